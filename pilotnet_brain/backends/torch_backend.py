"""PyTorch eager FP32 backend (the baseline), on CPU or CUDA."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, BackendUnavailable


def require_torch():
    try:
        import torch
    except ImportError:
        raise BackendUnavailable("PyTorch is not installed: pip install 'pilotnet_brain[torch]' "
                                 "(pins torch==2.13.0, a CPU wheel)") from None
    return torch


def require_cuda(torch) -> None:
    if not torch.cuda.is_available():
        raise BackendUnavailable("device 'cuda' requested but torch.cuda.is_available() is False "
                                 f"(torch {torch.__version__} built without CUDA, or no GPU/driver on this machine)")


class TorchFP32Backend(Backend):
    name = "torch_fp32"
    precision = "fp32"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        torch = require_torch()
        from ..pilotnet.weights import load_model

        if device not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; choose cpu or cuda")
        if device == "cuda":
            require_cuda(torch)
        if threads:
            torch.set_num_threads(threads)
        self.device = device
        self._torch = torch
        model, self.metadata, self._ranges = load_model(path)
        self.model = model.to(device)

    @property
    def label_ranges(self):
        return self._ranges

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            return self.model(x).float().cpu().numpy()
