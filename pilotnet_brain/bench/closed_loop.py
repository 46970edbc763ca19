"""Closed-loop benchmark through the real ROS 2 graph: every brain preset on every circuit.

The runs are a sweep (``pilotnet_brain.sweep``: one evaluation engine, on Ray); this module holds what is
the benchmark's own: the presets, one run through the graph (``benchmark_run``), the summary and its files.
Each run goes through ``pilotnet_brain.ros.launcher.run_simulation`` (sim_node + brain_node +
metrics_node, and the ``bag_recorder`` with ``record``), so the figures include DDS transport,
image conversion and scheduling, as with Gazebo.  The result is the summary table, one row per brain
preset (means over its runs)::

    Method | Average speed | Position deviation MAE (m) | BehaviorMetrics score |
    Brain iteration frequency (RT) | Mean inference time (ms) | Completed %

written as Markdown, CSV and JSON with the per-run metrics, and a bar chart PNG.  With ``record``,
each run's bag is re-scored from the bag alone (``bags.score.metrics_from_bag``) and the largest difference
from the live metrics is reported (``bag_agreement``).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Callable, Sequence

from pilotnet_brain import resources
from pilotnet_brain.bags.score import metrics_from_bag
from pilotnet_brain.bags.writer import SIDE_FILE, is_bag
from pilotnet_brain.config import SIM_NODE
from pilotnet_brain.evaluation.metrics import metrics_table, write_table
from pilotnet_brain.evaluation.plots import plot_runs_bar
from pilotnet_brain.jsonio import write_json_atomic, write_text_atomic

__all__ = [
    "BENCHMARK_WORKERS",
    "SUMMARY_COLUMNS",
    "UnknownPresetError",
    "available_presets",
    "preset_path",
    "resolve_presets",
    "benchmark_run",
    "summarize",
    "summary_table",
    "write_outputs",
]

#: (metric key, column header, decimals) of the summary table, one row per brain preset.
SUMMARY_COLUMNS = (
    ("method", "Method", None),
    ("average_speed_mps", "Average speed", 2),
    ("position_deviation_mae_m", "Position deviation MAE (m)", 3),
    ("position_deviation_score", "BehaviorMetrics score", 2),
    ("brain_iteration_frequency_hz", "Brain iteration frequency (RT)", 1),
    ("mean_inference_time_ms", "Mean inference time (ms)", 2),
    ("completed_pct", "Completed %", 1),
)

#: Metrics compared between the live run and its bag (same RunRecord => same values).
AGREEMENT_KEYS = (
    "completed_pct",
    "completed_distance_m",
    "average_speed_mps",
    "lap_time_s",
    "position_deviation_mae_m",
    "position_deviation_total_m",
    "brain_iteration_frequency_hz",
    "mean_inference_time_ms",
    "sim_time_s",
    "off_track_events",
)


#: Runs at once in `pilotnet-brain benchmark` (a sweep): one, so its timing columns are comparable.
BENCHMARK_WORKERS = 1


class UnknownPresetError(ValueError):
    """A brain preset name with no ``config/brains/<name>.yaml``."""


def _brains_dir() -> Path | None:
    for _, base in resources.search_dirs():
        d = base / "config" / "brains"
        if d.is_dir():
            return d
    return None


def available_presets() -> list[str]:
    """Names of the brain presets (``config/brains/<name>.yaml``), sorted."""
    d = _brains_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d is not None else []


def preset_path(name: str) -> Path:
    """``config/brains/<name>.yaml``; an unknown name raises ``UnknownPresetError`` listing the presets."""
    try:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise FileNotFoundError(name)
        return resources.config_path(f"brains/{name}.yaml")
    except (FileNotFoundError, ValueError):
        names = available_presets()
        listing = ", ".join(names) if names else "none found (no config/brains/*.yaml)"
        raise UnknownPresetError(f"unknown brain preset {name!r}; available: {listing}") from None


def resolve_presets(names: Sequence[str] | None) -> list[tuple[str, Path]]:
    """``[(name, path)]`` for the requested presets (all of them when ``names`` is empty)."""
    names = list(names or available_presets())
    if not names:
        raise UnknownPresetError("no brain presets found (config/brains/*.yaml)")
    unknown = []
    out = []
    for name in names:
        try:
            out.append((name, preset_path(name)))
        except UnknownPresetError:
            unknown.append(name)
    if unknown:
        names_ok = available_presets()
        raise UnknownPresetError(
            f"unknown brain preset{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(names_ok) if names_ok else 'none found (no config/brains/*.yaml)'}"
        )
    return out


def _default_run_fn():
    try:
        from pilotnet_brain.ros.launcher import run_simulation  # noqa: PLC0415 (needs rclpy, an optional extra)
    except ImportError as error:
        raise RuntimeError(
            f"the ROS 2 launcher is not available ({error}); install the 'ros' extra "
            f"(pip install -e '.[ros]') or source a ROS 2 installation"
        ) from error
    return run_simulation


def launcher_run_fn():
    """The launcher's run_simulation; RuntimeError saying what to install where ROS is missing."""
    return _default_run_fn()


def _mean(values):
    vals = [
        float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    ]
    return sum(vals) / len(vals) if vals else None


def summarize(rows: list[dict]) -> list[dict]:
    """One row per method (brain preset): the mean of each summary column over its runs.

    ``completed_pct`` and ``average_speed_mps`` average over every run (a failed run counts 0 %
    completed); the others over the runs that define them.  ``runs`` and ``laps_completed`` count.
    """
    methods: dict[str, list[dict]] = {}
    for r in rows:
        methods.setdefault(r.get("method") or r.get("brain") or "?", []).append(r)
    out = []
    for method, runs in methods.items():
        row = {
            "method": method,
            "runs": len(runs),
            "laps_completed": sum(1 for r in runs if (r.get("completed_pct") or 0) >= 100.0),
            "circuits": sorted({f"{r.get('circuit')}:{r.get('direction')}" for r in runs}),
        }
        for key, _, _ in SUMMARY_COLUMNS[1:]:
            values = [r.get(key) for r in runs]
            if key == "completed_pct":
                values = [v if v is not None else 0.0 for v in values]
            row[key] = _mean(values)
        out.append(row)
    return out


def summary_table(summary: list[dict], fmt: str = "markdown") -> str:
    """The summary table (Markdown or CSV) of ``summarize`` rows."""
    return metrics_table(summary, fmt, columns=SUMMARY_COLUMNS)


def _agreement(live: dict, from_bag: dict) -> dict:
    """Largest |live - bag| over AGREEMENT_KEYS, and the keys that differ (None vs number counts)."""
    worst = 0.0
    differing = []
    for k in AGREEMENT_KEYS:
        a, b = live.get(k), from_bag.get(k)
        if a is None and b is None:
            continue
        if a is None or b is None:
            differing.append(k)
            continue
        d = abs(float(a) - float(b))
        scale = max(1.0, abs(float(a)))
        if d > 1e-6 * scale:
            differing.append(k)
        worst = max(worst, d)
    return {"max_abs_diff": worst, "differing_keys": differing}


#: The warning of a run whose metrics_node never heard brain_node (the lap itself still ran). With the
#: graph's Fast DDS profile (config/fastdds.xml) discovery completes within a second, so it is reported,
#: not retried (`pilotnet-brain graph-benchmark` measures it).
NO_BRAIN_STATS = (
    "metrics_node received no brain stats (DDS discovery never matched brain_node's "
    "topics), so inference time and brain frequency are missing"
)


def _missing_brain_stats(metrics: dict) -> bool:
    return bool(metrics) and metrics.get("mean_inference_time_ms") is None


def _drop_old_bags(run_out: Path) -> None:
    """A bag is never overwritten by its writer: drop this run's bag of a previous benchmark."""
    for old in run_out.glob("*_bag"):
        if is_bag(old) or (old / SIDE_FILE).is_file():
            shutil.rmtree(old)


def benchmark_run(
    circuit: str,
    direction: str,
    brain_config,
    clock: str | None = None,
    record: bool = False,
    out_dir: Path | None = None,
    timeout: float | None = None,
    scale: float = 1.0,
    latency: float | None = None,
    domain_id: int | None = None,
    run_fn: Callable | None = None,
    conditions: str = SIM_NODE["conditions"].default,
    seed: int = SIM_NODE["seed"].default,
) -> dict:
    """One run through the ROS 2 graph (``run_fn``: the launcher's ``run_simulation``); returns its row.

    ``conditions`` (a ``sim.conditions`` label) and ``seed``: sim_node's parameters of the same names.

    The row is the run's metrics plus ``metrics_path``/``bag_path``, with ``record`` the bag's re-scored
    metrics' ``bag_agreement``, ``warning`` when the brain stats never reached metrics_node, and ``error``
    (0 % completed) when the run produced no metrics. A failing launch raises (the sweep records it).
    The runs of ``pilotnet-brain benchmark`` are a sweep of these (``pilotnet_brain.sweep.benchmark``).
    """
    run_fn = run_fn or _default_run_fn()
    if record and out_dir is not None and Path(out_dir).is_dir():
        _drop_old_bags(Path(out_dir))
    result = run_fn(
        circuit=circuit,
        direction=direction,
        brain_config=str(brain_config),
        clock=clock,
        record=record,
        out_dir=out_dir,
        timeout=timeout,
        scale=scale,
        latency=latency,
        domain_id=domain_id,
        conditions=conditions,
        seed=seed,
    )
    metrics = dict(result.get("metrics") or {})
    row = {
        **metrics,
        "metrics_path": str(result.get("metrics_path")) if result.get("metrics_path") else None,
        "bag_path": str(result.get("bag_path")) if result.get("bag_path") else None,
    }
    if _missing_brain_stats(metrics):
        row["warning"] = NO_BRAIN_STATS
    if not metrics:
        row["error"] = "run produced no metrics"
        row["completed_pct"] = 0.0
    if record and row["bag_path"]:
        try:
            bag_metrics, _, _ = metrics_from_bag(row["bag_path"])
            row["bag_agreement"] = _agreement(metrics, bag_metrics)
        except Exception as error:
            row["bag_agreement"] = {"error": f"{type(error).__name__}: {error}"}
    return row


def write_outputs(rows: list[dict], out_dir: Path, name: str = "benchmark") -> list[Path]:
    """``<name>.md``/``.csv`` (summary table), ``<name>_runs.md``/``.csv`` (per run), ``<name>.json``, ``<name>.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    written = []
    for fmt, suffix in (("markdown", ".md"), ("csv", ".csv")):
        p = out_dir / f"{name}{suffix}"
        write_text_atomic(summary_table(summary, fmt), p)
        written.append(p)
    md, csv_path = write_table(rows, out_dir / f"{name}_runs")
    written += [Path(md), Path(csv_path)]
    written.append(write_json_atomic({"summary": summary, "runs": rows}, out_dir / f"{name}.json"))
    chart_rows = [
        {
            **r,
            "brain": r.get("method") or r.get("brain"),
            "circuit": r.get("circuit", ""),
            "direction": r.get("direction", ""),
        }
        for r in rows
    ]
    written.append(Path(plot_runs_bar(chart_rows, out_dir / f"{name}.png")))
    return written
