"""One run of a sweep, in the worker process that executes it (engine.py wraps `execute` in a Ray task).

- inprocess: the brain (brains.from_parameters) drives the embedded simulator in this process
  (evaluation.drive), whose trajectory PNG comes back with the metrics.
- ros: the real ROS 2 graph (sim_node, brain_node, metrics_node as processes) through
  bench.closed_loop.benchmark_run, with a ROS_DOMAIN_ID no other run on this machine holds.

When more than one run can run at once, the run is pinned to one free core of its machine (claimed with a
lock file per core, released at the end; the graph's processes inherit it) so that runs do not share cores
and their inference timings stay their own; the worker's thread pools are capped at one thread (engine.py).
A run that raises is returned with `error` and 0 % completed; it does not stop the sweep.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from pilotnet_brain.bench.closed_loop import benchmark_run
from pilotnet_brain.brains.from_parameters import build_brain
from pilotnet_brain.config import BRAIN_NODE
from pilotnet_brain.evaluation.drive import drive
from pilotnet_brain.jsonio import write_text_atomic
from pilotnet_brain.ros.environment import PRIVATE_DOMAIN_IDS
from pilotnet_brain.sim.settings import sim_config_from_parameters
from pilotnet_brain.sweep.spec import CircuitEntry
from pilotnet_brain.sweep.store import RUNNING_DIR, RUNS_DIR, same_token

TRAJECTORY_FILE = "trajectory.png"
#: Where the lock files that claim a core or a ROS domain live (per user: one user's sweeps share them, so
#: concurrent sweeps never pin two runs to one core or give them one domain). PILOTNET_SWEEP_LOCK_DIR moves
#: them (tests: a sweep of their own, whatever else runs on the machine).
LOCK_DIR_VARIABLE = "PILOTNET_SWEEP_LOCK_DIR"


def lock_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"pilotnet_brain_sweep_locks_{os.getuid()}"
    return Path(os.environ.get(LOCK_DIR_VARIABLE) or default)


#: A run's scratch directory (the CSV track, the brain's parameters, drive's files): <prefix><pid>_<random>.
WORK_DIR_PREFIX = "pilotnet_sweep_"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (it travels with the task: the worker needs no sweep file)."""

    config_hash: str
    brain: str
    brain_params: dict
    circuit: CircuitEntry
    direction: str
    condition: str
    repeat: int
    mode: str
    sim_params: dict  # the run's simulator parameters (spec.run_simulator_parameters: its conditions, seed)
    scale: float
    record: bool
    pin_core: bool  # more than one run at once on a machine: each on a core of its own
    out_dir: str
    out_token: str
    run_fn: Callable | None = None  # ros mode: launcher.run_simulation, or a stand-in (tests)

    def identity(self) -> dict:
        return {
            "brain": self.brain,
            "circuit": self.circuit.name,
            "direction": self.direction,
            "condition": self.condition,
            "repeat": self.repeat,
            "seed": self.sim_params["seed"],
            "mode": self.mode,
            "clock": self.sim_params["clock"],
            "config_hash": self.config_hash,
        }

    def label(self) -> str:
        return f"{self.brain} {self.circuit.name} {self.direction} {self.condition} #{self.repeat}"


def execute(task: RunTask, node_id: str | None = None) -> dict:
    """Run it; returns {"row": run object, "files": {name: bytes}} (files for OUT/runs/<hash>/)."""
    t0 = time.perf_counter()
    reachable = same_token(task.out_dir, task.out_token)
    files = {}
    remove_stale_work_dirs()
    with pinned_to_free_core(task.pin_core) as core, running_pid_file(task, reachable):
        try:
            with tempfile.TemporaryDirectory(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}_") as work:
                if task.mode == "inprocess":
                    result, files = run_inprocess(task, Path(work))
                else:
                    result = run_ros(task, Path(work), reachable)
        except Exception as error:  # one broken run must not lose the others: recorded, not raised
            result = {"completed_pct": 0.0, "error": f"{type(error).__name__}: {' '.join(str(error).split())}"}
    label = result.pop("brain", None)
    row = {**task.identity(), **{k: v for k, v in result.items() if k not in ("circuit", "direction")}}
    row.update(
        brain_label=label,
        worker=os.getpid(),
        host=socket.gethostname(),
        node_id=node_id,
        core=core,
        run_wall_s=time.perf_counter() - t0,
    )
    return {"row": row, "files": files}


def run_inprocess(task: RunTask, work: Path) -> tuple:
    """The brain drives the embedded simulator here: (metrics, {trajectory.png: bytes})."""
    brain = build_brain(task.brain_params, logger=log)
    config = sim_config_from_parameters(task.sim_params, "sweep: simulator")
    result = drive(task.circuit.materialize(work), task.direction, brain, config, scale=task.scale, out_dir=work)
    files = {TRAJECTORY_FILE: result.plot_path.read_bytes()} if result.plot_path else {}
    return dict(result.metrics), files


def run_ros(task: RunTask, work: Path, reachable: bool) -> dict:
    """The run through the ROS 2 graph, on a ROS domain of its own; the graph's logs (and bag) go to
    OUT/runs/<hash>/ros where OUT is reachable, else they stay on the worker's machine for the run only."""
    run_dir = Path(task.out_dir) / RUNS_DIR / task.config_hash / "ros" if reachable else work / "ros"
    shutil.rmtree(run_dir, ignore_errors=True)  # what an earlier attempt of this unfinished run left
    run_dir.mkdir(parents=True)
    brain_yaml = work / f"{task.brain}.yaml"  # the parameters as the driver read them (model path absolute)
    brain_yaml.write_text(yaml.safe_dump({BRAIN_NODE.node: {"ros__parameters": task.brain_params}}), encoding="utf-8")
    latency = task.sim_params["latency"]
    timeout = task.sim_params["timeout"]
    with claimed_slot("ros-domain", list(PRIVATE_DOMAIN_IDS)) as domain:
        if domain is None:
            raise RuntimeError(f"every ROS domain ({PRIVATE_DOMAIN_IDS.start}..{PRIVATE_DOMAIN_IDS.stop - 1}) is taken")
        row = benchmark_run(
            circuit=task.circuit.materialize(work),
            direction=task.direction,
            brain_config=brain_yaml,
            clock=task.sim_params["clock"],
            record=task.record,
            out_dir=run_dir,
            timeout=timeout if timeout > 0 else None,
            scale=task.scale,
            latency=latency if latency >= 0 else None,
            conditions=task.sim_params["conditions"],
            seed=task.sim_params["seed"],
            domain_id=domain,
            run_fn=task.run_fn,
        )
    if not reachable:  # paths on another machine's temporary directory mean nothing to the driver
        row.update(metrics_path=None, bag_path=None)
    return {**row, "domain_id": domain}


def remove_stale_work_dirs() -> None:
    """Remove the scratch directories of runs whose worker process is gone (killed: no clean-up ran)."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORK_DIR_PREFIX}*_*"):
        pid = path.name[len(WORK_DIR_PREFIX) :].split("_", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def claimed_slot(kind: str, candidates: list):
    """Claim one of `candidates` (cores, ROS domains) for this process with a non-blocking lock on
    lock_dir()/<kind>-<candidate>.lock; yields it (None when all are held) and releases it on exit.
    Candidates are tried from a random start, so separate sweeps rarely even try the same one."""
    locks = lock_dir()
    locks.mkdir(parents=True, exist_ok=True)
    start = random.randrange(len(candidates)) if candidates else 0
    for candidate in candidates[start:] + candidates[:start]:
        handle = open(locks / f"{kind}-{candidate}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        try:
            yield candidate
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    yield None


@contextmanager
def pinned_to_free_core(enabled: bool):
    """With `enabled`, every thread of this process on one free core of the machine (its number yielded),
    restored on exit; otherwise (or with every core taken) nothing changes and None is yielded."""
    if not enabled:
        yield None
        return
    before = os.sched_getaffinity(0)
    cores = sorted(before)
    with claimed_slot("core", cores) as core:
        if core is None:
            yield None
            return
        _set_affinity({core})
        try:
            yield core
        finally:
            _set_affinity(before)


def _set_affinity(cores: set) -> None:
    # sched_setaffinity(0) sets the calling thread only: every thread (the torch pool, Ray's) is set.
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # a thread that just ended
            pass


@contextmanager
def running_pid_file(task: RunTask, reachable: bool):
    """OUT/running/<hash>.pid holds this worker's pid while the run is in progress (where OUT is reachable)."""
    path = Path(task.out_dir) / RUNNING_DIR / f"{task.config_hash}.pid"
    if reachable:
        write_text_atomic(f"{os.getpid()}\n", path)
    try:
        yield
    finally:
        if reachable:
            path.unlink(missing_ok=True)
