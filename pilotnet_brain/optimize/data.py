"""What optimisation methods get besides the FP32 weights: calibration and fine-tuning data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pilotnet.data import FrameSet
from ..preprocessing import to_network_input


@dataclass
class OptimizeData:
    calibration: np.ndarray        # (N, 3, 66, 200) float32 preprocessed training frames (a few hundred)
    train: FrameSet | None = None  # training frames for quantisation-aware fine-tuning
    seed: int = 0

    @classmethod
    def from_frames(cls, frames: FrameSet, calibration_size: int = 300, seed: int = 0) -> "OptimizeData":
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(frames), size=min(calibration_size, len(frames)), replace=False))
        return cls(to_network_input(frames.images[idx]), frames, seed)
