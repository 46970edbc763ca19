"""Label normalisation for PilotNet's two outputs (v, w), after DeepLearningStudio: min-max to [0, 1].

The ranges travel with the weights (in the model's metadata file), so every backend denormalises
with the ranges the model was trained with; DEFAULT_LABEL_RANGES is only what training starts from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelRanges:
    v_min: float
    v_max: float
    w_min: float
    w_max: float

    def __post_init__(self):
        if not all(np.isfinite([self.v_min, self.v_max, self.w_min, self.w_max])):
            raise ValueError(f"label ranges must be finite: {self}")
        if not (self.v_max > self.v_min and self.w_max > self.w_min):
            raise ValueError(f"label ranges must be increasing: {self}")

    @property
    def low(self) -> np.ndarray:
        return np.array([self.v_min, self.w_min], np.float32)

    @property
    def span(self) -> np.ndarray:
        return np.array([self.v_max - self.v_min, self.w_max - self.w_min], np.float32)

    def normalize(self, vw: np.ndarray) -> np.ndarray:
        """Physical (v m/s, w rad/s) -> [0, 1] per column."""
        return ((np.asarray(vw, np.float32) - self.low) / self.span).astype(np.float32)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """Network output in [0, 1] -> physical (v, w)."""
        return np.asarray(y, np.float32) * self.span + self.low

    def to_dict(self) -> dict:
        return {"v": [self.v_min, self.v_max], "w": [self.w_min, self.w_max]}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelRanges":
        try:
            return cls(float(d["v"][0]), float(d["v"][1]), float(d["w"][0]), float(d["w"][1]))
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ValueError(f"bad label ranges {d!r}: {error}") from None


#: v: the car stands still .. the explicit brain's top speed with margin; w: the car's yaw-rate limit.
DEFAULT_LABEL_RANGES = LabelRanges(v_min=0.0, v_max=12.0, w_min=-3.0, w_max=3.0)
