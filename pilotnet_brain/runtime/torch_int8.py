"""PyTorch INT8 backends (CPU, x86 quantized engine): dynamic, static (PTQ) and QAT.

The files are written by pilotnet_brain.export.torch_variants (`pilotnet-brain optimize`); loading
rebuilds the quantised architecture from code and reads the state_dict with
`torch.load(weights_only=True)`, so a file can never run code. Label ranges come from the model's
metadata (runtime/metadata.py: embedded in the file, and checked against the `.json` beside it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotnet_brain.errors import BackendUnavailable, ModelFileError
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.runtime.base import Backend
from pilotnet_brain.runtime.metadata import check_metadata_copy, parse_variant_metadata
from pilotnet_brain.runtime.torch_fp32 import require_torch


class _TorchInt8Backend(Backend):
    precision = "int8"
    device = "cpu"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        torch = require_torch()
        if device != "cpu":
            raise BackendUnavailable(
                f"{self.name} runs on the CPU only (PyTorch's quantized INT8 kernels are "
                f"x86/ARM CPU kernels); device {device!r} requested: use device 'cpu', "
                "or torch_cuda_fp16 for a GPU"
            )
        from pilotnet_brain.model import quantized  # noqa: PLC0415  (torch: optional)

        if quantized.ENGINE not in torch.backends.quantized.supported_engines:
            raise BackendUnavailable(
                f"{self.name} needs PyTorch's {quantized.ENGINE!r} quantized engine; "
                f"this torch build offers {torch.backends.quantized.supported_engines}"
            )
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        embedded, state = quantized.read_quantized_file(self.path, self.name)
        self.metadata, self._ranges = parse_variant_metadata(embedded, self.path, (self.name,))
        engine = self.metadata["settings"].get("engine", quantized.ENGINE)
        if engine != quantized.ENGINE:
            raise ModelFileError(f"{self.path}: quantised for engine {engine!r}, this code runs {quantized.ENGINE!r}")
        check_metadata_copy(self.path, self.metadata)
        self.model = quantized.quantized_from_state(self.path, self.name, state)
        # The x86 engine's oneDNN quantized convolutions cache their primitive for the FIRST input
        # shape they see; other shapes take a slower generic path (measured: +150 us per batch-1
        # call after a first batch of 64). The robot runs batch 1, so that is what primes the cache.
        with torch.inference_mode():
            self.model(torch.zeros(1, *INPUT_SHAPE))

    @property
    def label_ranges(self):
        return self._ranges

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()

    def describe(self) -> dict:
        settings = self.metadata["settings"]
        return {**super().describe(), "engine": settings.get("engine"), "method": self.metadata["method"]}


class TorchDynamicInt8Backend(_TorchInt8Backend):
    name = "torch_int8_dynamic"


class TorchStaticInt8Backend(_TorchInt8Backend):
    name = "torch_int8_static"


class TorchQATInt8Backend(_TorchInt8Backend):
    name = "torch_int8_qat"
