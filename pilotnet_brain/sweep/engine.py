"""The sweep engine: every run of a sweep as a Ray task (the only module that imports Ray).

- Ray: an embedded local instance started here (`ray.init(address="local")`, no dashboard, as many CPUs
  as --workers, default the machine's cores), or an existing cluster (--address auto | host:port |
  ray://host:port, started with `ray start --head` / `ray start --address=...`), where --workers caps the
  runs in flight (default: the cluster's CPUs).
- One task per run, 1 CPU each, thread pools capped at one thread (THREAD_ENV) and, with more than one
  run at once, pinned to a core of its own (runs.py). A task whose worker process dies is retried
  (max_retries); an exception inside a run comes back as a failed run (`error`, 0 % completed) and is
  not retried.
- Each finished run is saved at once (store.py: OUT/runs/<hash>/metrics.json, its files, OUT/sweep.json),
  so a rerun skips it; with nothing left to run, Ray is not started at all.
- Ctrl-C or SIGTERM: the runs in flight are cancelled (their ROS graphs torn down by the launcher), Ray is
  shut down (the embedded instance with all its processes), finished runs stay on disk, and the
  KeyboardInterrupt goes on to the caller (exit code 130).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import ray
from ray import cloudpickle
from ray.exceptions import RayError
from tqdm import tqdm

from pilotnet_brain.errors import ConfigError
from pilotnet_brain.jsonio import clean_json
from pilotnet_brain.ros.processes import SigtermAsInterrupt
from pilotnet_brain.sweep.runs import RunTask, execute
from pilotnet_brain.sweep.spec import (
    ADDRESS_PATTERN,
    SweepSpec,
    default_workers,
    resolve_brains,
    resolve_circuits,
    run_simulator_parameters,
    simulator_parameters,
)
from pilotnet_brain.sweep.store import RunStore, canonical, config_hash, package_fingerprint

#: Every worker's thread pools (OpenMP, BLAS, TensorFlow, OpenCV's): one thread, so a run uses its one core.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OPENCV_FOR_THREADS_NUM": "1",
}
#: Object store of the embedded instance: results are small (metrics and a PNG per run).
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2
#: Wall s the runs in flight get, after their cancellation, to tear down (a ROS graph: SIGINT, SIGTERM, SIGKILL).
CANCEL_GRACE_S = 20.0
#: Wall s to wait for a cluster's address to accept a connection.
CONNECT_TIMEOUT_S = 10.0
#: How often the driver looks up from waiting for runs (signals are handled between waits).
POLL_S = 0.5


@dataclass
class PlannedRun:
    task: RunTask
    configuration: dict


@dataclass
class SweepResult:
    """The sweep's run objects in plan order (finished ones), and what happened to its runs."""

    rows: list
    executed: int = 0
    skipped: int = 0
    failed: int = 0
    out_dir: Path | None = None
    ray: dict = field(default_factory=dict)  # how Ray ran: address, session, workers, nodes


def plan_runs(spec: SweepSpec, store: RunStore, run_fn: Callable | None = None) -> list:
    """Every run of the sweep (brain x circuit x direction x condition x repeat) with its configuration."""
    try:
        brains = resolve_brains(spec.brains)
    except ValueError as error:  # ConfigError, UnknownPresetError, ModelFileError, a backend's name
        raise ConfigError(f"{spec.where('brains')}: {error}") from None
    try:
        circuits = resolve_circuits(spec.circuits, spec.directions, spec.scale)
    except ValueError as error:  # CircuitError, ConfigError
        raise ConfigError(f"{spec.where('circuits')}: {error}") from None
    sim_params = simulator_parameters(spec)
    package = package_fingerprint()
    workers = spec.workers or default_workers()
    plan = []
    axes = (brains, circuits, spec.directions, spec.conditions, range(spec.repeats))
    for brain, circuit, direction, condition, repeat in itertools.product(*axes):
        csv_sha256 = hashlib.sha256(circuit.csv_text.encode()).hexdigest() if circuit.csv_text else None
        run_sim_params = run_simulator_parameters(sim_params, condition, repeat)  # its conditions and seed
        configuration = canonical(
            {
                "brain": {"name": brain.name, "config_text": brain.text, "model_sha256": brain.model_sha256},
                "circuit": {"name": circuit.name, "csv_sha256": csv_sha256},
                "direction": direction,
                "condition": condition,
                "repeat": repeat,
                "mode": spec.mode,
                "simulator": run_sim_params,
                "scale": spec.scale,
                "record": spec.record,
                "package": package,
            }
        )
        task = RunTask(
            config_hash=config_hash(configuration),
            brain=brain.name,
            brain_params=brain.params,
            circuit=circuit,
            direction=direction,
            condition=condition,
            repeat=repeat,
            mode=spec.mode,
            sim_params=run_sim_params,
            scale=spec.scale,
            record=spec.record,
            pin_core=workers > 1,
            out_dir=str(store.out_dir),
            out_token=store.token,
            run_fn=run_fn,
        )
        plan.append(PlannedRun(task, configuration))
    return plan


def _run_task(task: RunTask) -> dict:
    """The Ray task: one run on this worker."""
    return execute(task, node_id=ray.get_runtime_context().get_node_id())


def run_sweep(
    spec: SweepSpec,
    progress: bool = True,
    fresh: bool = False,
    run_fn: Callable | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run the sweep's unfinished runs on Ray, saving each as it finishes; returns every run object.

    fresh: run everything again (drop the finished results of this sweep's runs first).
    run_fn: ros mode: the function a run calls instead of the launcher's run_simulation (tests); it is
    pickled by value, so it need not be importable on the workers.
    log: lines for the user (default: stderr).
    """
    return run_sweeps([spec], progress=progress, fresh=fresh, run_fn=run_fn, log=log)


#: What sweeps run together (run_sweeps) have in common: one output directory, one Ray instance.
SHARED_SETTINGS = ("out", "workers", "address", "max_retries")


def run_sweeps(
    specs: list,
    progress: bool = True,
    fresh: bool = False,
    run_fn: Callable | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Several sweeps as one (`run_sweep`'s arguments): their runs on one Ray instance, into one output
    directory and one sweep.json, a run that two of them plan (the same configuration) once. For a set of
    runs that is not one product of axes (pilotnet-brain generalization); they share SHARED_SETTINGS."""
    if not specs:
        raise ValueError("run_sweeps: no sweep given")
    first = specs[0]
    for spec in specs[1:]:
        differing = [key for key in SHARED_SETTINGS if getattr(spec, key) != getattr(first, key)]
        if differing:
            raise ValueError(f"run_sweeps: the sweeps differ in {', '.join(differing)} (they must share them)")
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    store = RunStore(first.out)
    plan, planned_hashes = [], set()
    for spec in specs:  # every name and file checked before anything is written
        for planned in plan_runs(spec, store, run_fn):
            if planned.task.config_hash not in planned_hashes:
                planned_hashes.add(planned.task.config_hash)
                plan.append(planned)
    if first.address is not None:
        check_reachable(first.address, first.where("address"))
    store.open()
    try:
        return _run_planned(first, store, plan, fresh, progress, run_fn, log)
    finally:
        store.close()


def _run_planned(spec, store, plan, fresh, progress, run_fn, log) -> SweepResult:
    if fresh:
        for planned in plan:
            store.forget(planned.task.config_hash)
    done = {p.task.config_hash: store.finished(p.task.config_hash) for p in plan}
    done = {h: row for h, row in done.items() if row is not None}
    result = SweepResult(rows=[], skipped=len(done), out_dir=store.out_dir)
    todo = [p for p in plan if p.task.config_hash not in done]

    def rows_in_order():
        return [done[p.task.config_hash] for p in plan if p.task.config_hash in done]

    store.write_sweep(rows_in_order())
    if not todo:
        log(f"sweep: all {len(plan)} runs already finished in {store.out_dir} (nothing to run)")
        result.rows = rows_in_order()
        return result
    if done:
        log(
            f"sweep: {len(done)} of {len(plan)} runs already finished in {store.out_dir}; running the other {len(todo)}"
        )
    if run_fn is not None and not run_fn.__module__.startswith("pilotnet_brain") and run_fn.__module__ in sys.modules:
        cloudpickle.register_pickle_by_value(sys.modules[run_fn.__module__])

    in_flight: dict = {}
    pending = list(todo)
    bar = tqdm(total=len(plan), initial=len(done), desc="sweep", unit="run", file=sys.stderr, disable=not progress)
    bar.set_postfix(failed=0)
    interrupted = False
    try:
        result.ray = _connect(spec, log)
        remote = ray.remote(_run_task).options(num_cpus=1, max_retries=spec.max_retries, retry_exceptions=False)
        with SigtermAsInterrupt():  # after ray.init, which sets a SIGTERM handler of its own
            while pending or in_flight:
                while pending and len(in_flight) < result.ray["workers"]:
                    planned = pending.pop(0)
                    in_flight[remote.remote(planned.task)] = planned
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    planned = in_flight.pop(ref)
                    row, files = _outcome(ref, planned.task)
                    row["run_dir"] = store.run_dir(planned.task.config_hash).relative_to(store.out_dir).as_posix()
                    store.save(planned.task.config_hash, planned.configuration, row, files)
                    done[planned.task.config_hash] = row
                    store.write_sweep(rows_in_order())
                    result.executed += 1
                    result.failed += bool(row.get("error"))
                    bar.update(1)
                    bar.set_postfix(failed=result.failed)
                    bar.write(_run_line(row), file=sys.stderr)
                    if row.get("warning"):
                        log(f"sweep: {planned.task.label()}: {row['warning']}")
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        with _IgnoredSignals():  # the clean-up is not cut short by a second Ctrl-C
            bar.close()
            if interrupted:
                log(
                    f"sweep: interrupted; {len(done)} of {len(plan)} runs finished are in {store.out_dir}; "
                    f"cancelling {len(in_flight)} running"
                )
            _cancel(in_flight)
            ray.shutdown()
    result.rows = rows_in_order()
    return result


def _connect(spec: SweepSpec, log) -> dict:
    """Start the embedded local Ray instance, or join the cluster at spec.address; how it runs."""
    runtime_env = {"env_vars": THREAD_ENV}
    if spec.address is None:
        workers = spec.workers or default_workers()
        ray.init(
            address="local",
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            runtime_env=runtime_env,
        )
        where = "local Ray instance"
    else:
        ray.init(address=spec.address, log_to_driver=False, logging_level=logging.WARNING, runtime_env=runtime_env)
        workers = spec.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        where = f"Ray cluster at {spec.address}"
    info = {
        "address": spec.address or "local",
        "session": _session_dir(),
        "workers": workers,
        "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
    }
    log(f"sweep: {where} ({info['nodes']} node(s), session {info['session']}), {workers} worker(s)")
    return info


def check_reachable(address: str, where: str = "--address") -> None:
    """ConnectionError (one line) when nothing answers at a host:port address: Ray itself would retry for
    minutes. `auto` is left to Ray (it fails at once without a running instance on this machine)."""
    match = ADDRESS_PATTERN.fullmatch(address)
    if match is None:
        return
    host, port = match["host"].strip("[]"), int(match["port"])
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ConnectionError(
            f"{where}: {address}: no Ray cluster answers at {host}:{port} ({error.strerror or error}); "
            "start one with `ray start --head`"
        ) from None


def _session_dir() -> str | None:
    try:
        return ray._private.worker.global_worker.node.get_session_dir_path()
    except AttributeError:  # Ray Client (ray://): the session is on the cluster
        return None


def _outcome(ref, task: RunTask) -> tuple:
    """(run object, files) of a finished task; a task Ray could not finish (its worker died max_retries
    + 1 times, its node was lost) becomes a failed run."""
    try:
        out = ray.get(ref)
        return clean_json(out["row"]), out["files"]
    except RayError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {
            **task.identity(),
            "completed_pct": 0.0,
            "error": f"{type(error).__name__}: {first}".rstrip(": "),
        }, {}


def _run_line(row: dict) -> str:
    done = row.get("completed_pct")
    text = (
        f"{row['brain']:>16s} {row['circuit']:>15s} {row['direction']}"
        + (f" {row['condition']}" if row.get("condition") not in (None, "none") else "")
        + (f" #{row['repeat']}" if row.get("repeat") else "")
        + f": {'-' if done is None else f'{done:.1f}'} % completed"
    )
    if row.get("host"):
        text += (
            f" [{row['host']} pid {row['worker']}"
            + (f" core {row['core']}" if row.get("core") is not None else "")
            + "]"
        )
    if row.get("error"):
        text += f" (error: {row['error']})"
    return text


def _cancel(in_flight: dict) -> None:
    """Cancel the runs in flight (KeyboardInterrupt in the task: a ROS graph is torn down by the launcher)
    and give them CANCEL_GRACE_S to end."""
    refs = list(in_flight)
    for ref in refs:
        try:
            ray.cancel(ref, force=False)
        except Exception:  # already finished, or Ray itself is going down (Ctrl-C reached it too)
            pass
    if refs:
        try:
            ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        except Exception:
            pass


class _IgnoredSignals:
    """While active (main thread only): SIGINT and SIGTERM ignored, so the clean-up is not cut short."""

    def __enter__(self):
        self.old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        return False
