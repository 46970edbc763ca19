"""What optimisation methods get besides the FP32 weights: calibration and fine-tuning data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotnet_brain.data.frames import FrameSet
from pilotnet_brain.model.preprocessing import to_network_input


# Measured (static INT8 PyTorch, worst test-circuit MSE vs FP32): 300 frames gave 1.07-1.23x over three
# random draws of the calibration frames; 1000 frames 1.08-1.12x. Calibration takes seconds either way.
DEFAULT_CALIBRATION_SIZE = 1000


@dataclass
class OptimizeData:
    calibration: np.ndarray        # (N, 3, 66, 200) float32 preprocessed training frames
    train: FrameSet | None = None  # training frames for quantisation-aware fine-tuning
    seed: int = 0

    @classmethod
    def from_frames(cls, frames: FrameSet, calibration_size: int = DEFAULT_CALIBRATION_SIZE, seed: int = 0) -> "OptimizeData":
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(frames), size=min(calibration_size, len(frames)), replace=False))
        return cls(to_network_input(frames.images[idx]), frames, seed)
