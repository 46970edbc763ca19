"""What every brain is: camera frame in, (v, w) command out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Command:
    v: float  # linear.x, m/s
    w: float  # angular.z, rad/s

    @property
    def is_finite(self) -> bool:
        return math.isfinite(self.v) and math.isfinite(self.w)


STOP = Command(0.0, 0.0)


@dataclass(frozen=True)
class BrainOutput:
    command: Command
    inference_s: float | None = None  # forward-pass time; None: the whole step counts as inference
    # Non-empty: the brain cannot see what it steers by (why, in words) and is slowing to a stop.
    blind: str = ""


class Brain(Protocol):
    name: str

    def reset(self) -> None:
        """Forget state between runs (PID integrators, last seen line, ...)."""

    def step(self, image_rgb: np.ndarray, stamp_s: float) -> BrainOutput:
        """One iteration: a 480x640x3 uint8 RGB frame taken at simulated time stamp_s."""


def clamp_command(cmd: Command, max_v: float, max_w: float) -> Command:
    """Limit a command; a non-finite command (NaN/inf from a model) becomes a stop."""
    if not cmd.is_finite:
        return STOP
    return Command(min(max(cmd.v, -max_v), max_v), min(max(cmd.w, -max_w), max_w))
