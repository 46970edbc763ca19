"""Score a run from its bag alone: the same ``RunRecord`` and metrics as metrics_node computed live.

:func:`run_record_from_arrays` is THE construction of a ``RunRecord`` from recorded arrays: metrics_node
(live, through ``metrics_node.record_from_arrays``) and :func:`run_record_from_bag` both use it, so a
bag and the live run score identically. The circuit and its reference ("perfect lap") come from the
bag's configuration; frame count and wall time from the final sim_node stats; the end reason from the
episode status. :func:`analyze_bags` is ``pilotnet-brain analyze``: metrics, JSON and plots per bag.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from pilotnet_brain.bags.reader import BagRun, read_bag
from pilotnet_brain.bags.writer import CUSTOM_DATA_KEY, SIDE_FILE
from pilotnet_brain.errors import BagError, CircuitError
from pilotnet_brain.evaluation.drive import run_slug
from pilotnet_brain.evaluation.metrics import compute_metrics, write_metrics_json
from pilotnet_brain.evaluation.plots import plot_speed_and_commands, plot_trajectory
from pilotnet_brain.interfaces import BRAIN_STATS_FIELDS, OFF_TRACK
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.record import RunRecord

__all__ = ["analyze_bags", "metrics_from_bag", "run_record_from_arrays", "run_record_from_bag"]


def run_record_from_arrays(
    *,
    circuit: str,
    direction: str,
    brain: str,
    t,
    xy,
    iteration_wall_s=(),
    inference_s=(),
    frame_count: int = 0,
    off_track_events: int = 0,
    wall_time_s: float = 0.0,
    end_reason: str = "",
    scale: float = 1.0,
    reference_spacing_m: float = 1.0,
    circuit_obj=None,
) -> RunRecord:
    """THE construction of a ``RunRecord`` from recorded arrays, shared by metrics_node (live, via
    ``metrics_node.record_from_arrays``) and ``analyze`` (from a bag), so both score a run alike.

    ``circuit`` is a built-in name or CSV path (loaded with ``scale`` and ``direction``, unless a
    ``circuits.Circuit`` is passed as ``circuit_obj``); the reference is its center line resampled every
    ``reference_spacing_m`` metres, exactly as the embedded simulator's records.  ``t`` are simulated
    seconds (odometry header stamps), ``xy`` the odometry positions; samples are put in time order
    (stable sort).  Brain timings in seconds.
    """
    if circuit_obj is None:
        circuit_obj = load_circuit(circuit, direction=direction, scale=float(scale))
    t = np.asarray(t, dtype=float).reshape(-1)
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    order = np.argsort(t, kind="stable")
    return RunRecord(
        circuit=circuit_obj.name,
        direction=direction,
        brain=str(brain),
        t=t[order],
        xy=xy[order],
        reference=circuit_obj.reference_points(float(reference_spacing_m)),
        reference_spacing_m=float(reference_spacing_m),
        iteration_wall_s=np.asarray(iteration_wall_s, dtype=float).reshape(-1),
        inference_s=np.asarray(inference_s, dtype=float).reshape(-1),
        frame_count=int(frame_count),
        off_track_events=int(off_track_events),
        wall_time_s=float(wall_time_s),
        end_reason=str(end_reason or ""),
    )


def _number(d: Mapping, key: str, default):
    v = d.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def run_record_from_bag(run: BagRun | str | os.PathLike) -> RunRecord:
    """The ``RunRecord`` of a bag, built as metrics_node builds it from the same messages: odometry,
    brain stats, the final sim_node stats (frame count, wall time) and the episode status; circuit,
    direction, scale, brain label and reference spacing from the bag's metadata."""
    if not isinstance(run, BagRun):
        run = read_bag(run)
    cfg = run.config
    missing = [k for k in ("circuit", "direction") if not cfg.get(k)]
    if missing:
        raise BagError(
            f"{run.path}: the bag's metadata does not say the run's {' and '.join(missing)} "
            f"(no {SIDE_FILE} and no custom_data {CUSTOM_DATA_KEY!r})"
        )
    sim = run.sim_stats[-1] if run.sim_stats else {}
    # The same operations as metrics_node (brain_stats_arrays), so the timings agree to the bit.
    iteration_s = run.brain_stats[:, BRAIN_STATS_FIELDS.index("iteration_ms")] / 1e3
    inference_s = run.brain_stats[:, BRAIN_STATS_FIELDS.index("inference_ms")] / 1e3
    numbers = {}
    for key, default in (("scale", 1.0), ("reference_spacing_m", 1.0)):
        value = cfg.get(key) or default
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BagError(f"{run.path}: the bag's metadata gives {key} = {value!r}, not a number")
        numbers[key] = float(value)
    try:
        return run_record_from_arrays(
            circuit=str(cfg["circuit"]),
            direction=str(cfg["direction"]),
            brain=str(cfg.get("brain") or "unknown"),
            t=run.t,
            xy=run.xy,
            iteration_wall_s=iteration_s,
            inference_s=inference_s,
            frame_count=int(_number(sim, "frame_count", len(iteration_s))),
            off_track_events=1 if run.end_reason == OFF_TRACK else 0,
            wall_time_s=float(_number(sim, "wall_time_s", 0.0)),
            end_reason=run.end_reason,
            scale=numbers["scale"],
            reference_spacing_m=numbers["reference_spacing_m"],
        )
    except CircuitError as error:
        raise BagError(f"{run.path}: the bag's circuit cannot be loaded: {error}") from None


def metrics_from_bag(path) -> tuple[dict, RunRecord, BagRun]:
    """Recompute every metric of a run from its bag: ``(metrics, record, bag_run)``."""
    run = read_bag(path)
    record = run_record_from_bag(run)
    return compute_metrics(record), record, run


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def analyze_bags(paths: Iterable, out_dir=None, log: Callable[[str], None] | None = _to_stderr) -> list[dict]:
    """Recompute the metrics of each bag; with ``out_dir``, write per-run JSON, trajectory and
    speed/command PNGs.  Returns the metrics rows (each with its ``bag``).

    Every bag is read and scored before anything is written, so a bad bag (a BagError naming it)
    leaves no output behind.  A bag recovered without its index says so through ``log`` and in its
    row (``bag_recovered``)."""
    out = Path(out_dir) if out_dir is not None else None
    scored = []
    for p in paths:
        metrics, record, run = metrics_from_bag(p)
        metrics = {**metrics, "bag": str(Path(p))}
        if run.recovered:
            metrics["bag_recovered"] = run.recovered
            if log is not None:
                log(f"{Path(p)}: {run.recovered}")
        scored.append((p, metrics, record, run))
    rows = [metrics for _, metrics, _, _ in scored]
    if out is None:
        return rows
    for index, (p, metrics, record, run) in enumerate(scored):
        name = run_slug(record.circuit, record.direction, record.brain)
        if sum(1 for r in rows[: index + 1] if run_slug(r["circuit"], r["direction"], r["brain"]) == name) > 1:
            name = run_slug(record.circuit, record.direction, f"{record.brain}_{Path(p).name}")
        write_metrics_json(metrics, out / f"{name}.json")
        circuit = load_circuit(
            run.config["circuit"], direction=run.config["direction"], scale=float(run.config.get("scale", 1.0) or 1.0)
        )
        plot_trajectory(
            record, metrics, out / f"{name}.png", circuit_xy=circuit.centerline, half_width_m=circuit.half_width_m
        )
        title = f"{metrics.get('circuit')} ({metrics.get('direction')}) - {metrics.get('brain')}: speed and commands"
        plot_speed_and_commands(run.t, run.speed, run.command_t, run.commands, title, out / f"{name}_timeseries.png")
    return rows
