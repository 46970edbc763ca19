"""The record of one run: what the simulator (or a bag, or metrics_node) hands to the metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RunRecord:
    """Everything recorded during one run of one brain on one circuit."""

    circuit: str
    direction: str  # "ccw" | "cw"
    brain: str
    t: np.ndarray  # (M,) simulated time of each odometry sample, s, increasing
    xy: np.ndarray  # (M, 2) odometry positions, m
    reference: np.ndarray  # (K, 2) "perfect lap": circuit center line in driving order, point 0 = start/finish
    reference_spacing_m: float
    iteration_wall_s: np.ndarray  # wall time of each brain iteration (image in -> command out, sleep excluded), s
    inference_s: np.ndarray  # forward-pass time of each iteration, s
    frame_count: int  # camera frames produced
    off_track_events: int
    wall_time_s: float  # wall-clock duration of the run
    end_reason: str = ""  # "lap_completed" | "off_track" | "timeout" | ...
    condition: str | None = None  # simulator conditions (sim.conditions label, "none" = clear); None = not known
