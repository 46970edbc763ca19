"""One inference interface for every PilotNet runtime.

A backend takes a preprocessed batch (N x 3 x 66 x 200 float32 in [0, 1], from
pilotnet_brain.model.preprocessing) and returns (N, 2) physical (v m/s, w rad/s). It knows its name,
device, precision and file. Brains and nodes choose a backend by name from the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from pilotnet_brain.model.preprocessing import INPUT_SHAPE


class Backend(ABC):
    name: str = ""
    device: str = "cpu"
    precision: str = "fp32"

    def __init__(self, path: Path):
        self.path = Path(path)

    @abstractmethod
    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        """(N, 2) network outputs on the normalised label scale."""

    @property
    @abstractmethod
    def label_ranges(self):
        """LabelRanges the model was trained with."""

    def predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch)
        return np.asarray(self._predict_normalized(batch), np.float32).reshape(len(batch), 2)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 2) physical (v, w) for a preprocessed batch."""
        return self.label_ranges.denormalize(self.predict_normalized(batch))

    def describe(self) -> dict:
        return {"backend": self.name, "device": self.device, "precision": self.precision, "file": str(self.path)}


def check_batch(batch: np.ndarray) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.ndim != 4 or tuple(batch.shape[1:]) != INPUT_SHAPE:
        raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, INPUT_SHAPE))}), got {batch.shape}")
    return np.ascontiguousarray(batch, dtype=np.float32)
