"""`pilotnet-brain benchmark` as a sweep: every brain preset on every circuit and direction through the
real ROS 2 graph (mode ros), on the sweep engine, one run at a time by default so that the timing columns
of its summary table stay comparable between runs and machines."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from pilotnet_brain.bench import closed_loop
from pilotnet_brain.bench.closed_loop import BENCHMARK_WORKERS
from pilotnet_brain.sim.builtin_circuits import TEST_CIRCUITS
from pilotnet_brain.sweep.engine import run_sweep
from pilotnet_brain.sweep.spec import sweep_spec

DEFAULT_OUT = "runs/benchmark"


def run_benchmark(
    brains: Sequence[str] | None,
    circuits: Sequence[str] = TEST_CIRCUITS,
    directions: Sequence[str] = ("ccw",),
    clock: str | None = None,
    out_dir: Path | None = None,
    record: bool = False,
    timeout: float | None = None,
    progress: bool = True,
    run_fn: Callable | None = None,
    log: Callable[[str], None] | None = None,
    workers: int = BENCHMARK_WORKERS,
    address: str | None = None,
    fresh: bool = False,
) -> list[dict]:
    """Run every preset (all of config/brains when ``brains`` is empty) on every circuit and direction;
    return the run objects of the sweep (a rerun in the same ``out_dir`` keeps the finished runs).

    Each row is the sweep's run object (the run's metrics, brain, circuit, direction, host, worker, ...)
    plus ``method`` (preset name) and ``preset`` (its file), and from ``benchmark_run`` ``metrics_path``,
    ``bag_path``, with ``record`` ``bag_agreement``, and ``warning`` when the brain stats never reached
    metrics_node; a failed run has ``error`` and counts 0 % completed.
    run_fn: the launcher's run_simulation (default; RuntimeError where ROS is not installed) or a stand-in.
    """
    presets = closed_loop.resolve_presets(brains)
    run_fn = run_fn or closed_loop.launcher_run_fn()
    options = {
        "brains": [name for name, _ in presets],
        "circuits": [str(c) for c in circuits],
        "directions": list(directions),
        "mode": "ros",
        "clock": clock,
        "timeout": timeout,
        "record": record,
        "workers": workers,
        "address": address,
        "out": str(out_dir or DEFAULT_OUT),
    }
    result = run_sweep(sweep_spec(options=options), progress=progress, fresh=fresh, run_fn=run_fn, log=log)
    paths = {name: str(path) for name, path in presets}
    return [{**row, "method": row["brain"], "preset": paths.get(row["brain"])} for row in result.rows]
