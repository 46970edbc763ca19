"""Closed-loop evaluation on the embedded simulator: drive a brain on circuits, score and save each run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from pilotnet_brain.control import Brain
from pilotnet_brain.evaluation.metrics import compute_metrics, write_metrics_json, write_table
from pilotnet_brain.evaluation.plots import plot_runs_bar, plot_trajectory
from pilotnet_brain.sim.circuits import Circuit, load_circuit
from pilotnet_brain.sim.world import EpisodeLog, SimConfig, World, run_episode


@dataclass
class DriveResult:
    metrics: dict
    log: EpisodeLog
    json_path: Path | None
    plot_path: Path | None


def run_slug(circuit_name: str, direction: str, brain_name: str) -> str:
    """File-system friendly name of one run."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{circuit_name}_{direction}_{brain_name}")


def drive(
    circuit_spec: str | Circuit,
    direction: str,
    brain: Brain,
    config: SimConfig,
    scale: float = 1.0,
    out_dir: Path | None = None,
    progress: Callable[[float], None] | None = None,
) -> DriveResult:
    """One run of `brain` on a circuit (a loaded Circuit, or a built-in name or CSV path loaded with
    `direction` and `scale`); writes JSON + trajectory PNG to out_dir as soon as the run is over.

    A run ended by the brain's error (end_reason "brain_error") has the brain's message as `brain_error`
    in its metrics."""
    circuit = (
        circuit_spec
        if isinstance(circuit_spec, Circuit)
        else load_circuit(circuit_spec, direction=direction, scale=scale)
    )
    world = World(circuit, config)
    log = run_episode(world, brain, progress=progress)
    metrics = compute_metrics(log.record)
    if log.brain_error:
        metrics["brain_error"] = log.brain_error
    json_path = plot_path = None
    if out_dir is not None:
        slug = run_slug(circuit.name, circuit.direction, brain.name)
        json_path = out_dir / f"{slug}.json"
        write_metrics_json(metrics, json_path)
        plot_path = Path(
            plot_trajectory(
                log.record,
                metrics,
                out_dir / f"{slug}.png",
                circuit_xy=circuit.centerline,
                half_width_m=world.circuit.half_width_m,  # as driven: conditions may widen the road
            )
        )
    return DriveResult(metrics, log, json_path, plot_path)


def write_summary(rows: Iterable[dict], out_dir: Path, name: str = "summary") -> list[Path]:
    """Table of many runs (Markdown + CSV) and a bar chart."""

    rows = list(rows)
    md, csv_path = write_table(rows, out_dir / name)
    png = plot_runs_bar(rows, out_dir / f"{name}.png")
    return [Path(md), Path(csv_path), Path(png)]
