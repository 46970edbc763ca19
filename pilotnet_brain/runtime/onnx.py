"""ONNX Runtime backends: FP32 (`onnx_fp32`) and static INT8 QDQ (`onnx_int8`), on CPU or CUDA.

The model file is ONNX (protobuf; nothing is executed on loading) with `<file>.json` beside it
(written by pilotnet_brain.export.onnx_variants) giving the label ranges. device='cuda' uses
TensorrtExecutionProvider / CUDAExecutionProvider when this onnxruntime has them, and refuses clearly
otherwise (it never silently runs on the CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotnet_brain.errors import BackendUnavailable, ModelFileError
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.runtime.base import Backend
from pilotnet_brain.runtime.metadata import load_variant_metadata

ONNX_INSTALL = "pip install 'pilotnet_brain[onnx]'"


def require_onnxruntime():
    try:
        import onnxruntime  # noqa: PLC0415  (optional: only the ONNX backends need it)
    except ImportError:
        raise BackendUnavailable(f"ONNX Runtime is not installed: {ONNX_INSTALL}") from None
    return onnxruntime


class OnnxFP32Backend(Backend):
    name = "onnx_fp32"
    precision = "fp32"
    methods = ("onnx_fp32",)

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        if device not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; choose cpu or cuda")
        self.metadata, self._ranges = load_variant_metadata(self.path, self.methods)
        ort = require_onnxruntime()
        available = ort.get_available_providers()
        if device == "cuda":
            providers = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
            if not providers:
                raise BackendUnavailable(
                    f"device 'cuda' requested but this onnxruntime {ort.__version__} has only {available}: "
                    "install onnxruntime-gpu (CUDA 12) instead of onnxruntime, on a machine with an NVIDIA GPU"
                )
            providers.append("CPUExecutionProvider")
        else:
            providers = ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as error:  # onnxruntime raises InvalidProtobuf / Fail / NoSuchFile
            raise ModelFileError(f"{self.path} is not a loadable ONNX model: {error}") from None
        if device == "cuda" and not any(p in self.session.get_providers() for p in providers[:-1]):
            raise BackendUnavailable(
                f"device 'cuda' requested but ONNX Runtime could not start "
                f"{providers[:-1]} (no GPU, driver or CUDA/cuDNN libraries?)"
            )
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or list(inputs[0].shape[1:]) != list(INPUT_SHAPE):
            raise ModelFileError(
                f"{self.path}: not a PilotNet ONNX model (inputs "
                f"{[(i.name, i.shape) for i in inputs]}, outputs {[o.name for o in outputs]})"
            )
        self._input = inputs[0].name
        self._output = outputs[0].name
        self.device = device
        self.threads = threads
        self.providers = self.session.get_providers()

    @property
    def label_ranges(self):
        return self._ranges

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self._output], {self._input: batch})[0]

    def describe(self) -> dict:
        return {**super().describe(), "providers": self.providers, "threads": self.threads}


class OnnxInt8Backend(OnnxFP32Backend):
    """Static INT8 (QDQ, per-channel): on the CPU provider ORT fuses the QDQ pairs into integer kernels."""

    name = "onnx_int8"
    precision = "int8"
    methods = ("onnx_int8",)
