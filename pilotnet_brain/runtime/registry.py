"""Backend registry: build a PilotNet inference backend from a name and a model file."""

from __future__ import annotations

from pathlib import Path

from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.runtime.base import Backend, check_batch

#: name -> (module, class). Imports are lazy so a missing optional runtime only affects its backends.
_REGISTRY = {
    # PyTorch (torch_fp32.py): eager FP32 baseline, traced+frozen FP32, CUDA FP32/FP16
    "torch_fp32": ("torch_fp32", "TorchFP32Backend"),
    "torch_fp32_traced": ("torch_fp32", "TorchTracedFP32Backend"),
    "torch_cuda_fp32": ("torch_fp32", "TorchCudaFP32Backend"),
    "torch_cuda_fp16": ("torch_fp32", "TorchCudaFP16Backend"),
    # PyTorch INT8 (torch_int8.py)
    "torch_int8_dynamic": ("torch_int8", "TorchDynamicInt8Backend"),
    "torch_int8_static": ("torch_int8", "TorchStaticInt8Backend"),
    "torch_int8_qat": ("torch_int8", "TorchQATInt8Backend"),
    # ONNX Runtime (onnx.py)
    "onnx_fp32": ("onnx", "OnnxFP32Backend"),
    "onnx_int8": ("onnx", "OnnxInt8Backend"),
    # TensorFlow / LiteRT / TF-TRT (tensorflow.py)
    "tf_fp32": ("tensorflow", "TFSavedModelBackend"),
    "tflite_fp32": ("tensorflow", "TFLiteFP32Backend"),
    "tflite_fp16": ("tensorflow", "TFLiteFP16Backend"),
    "tflite_dynamic": ("tensorflow", "TFLiteDynamicBackend"),
    "tflite_int8": ("tensorflow", "TFLiteInt8Backend"),
    "tftrt_fp32": ("tensorflow", "TFTRTFP32Backend"),
    "tftrt_fp16": ("tensorflow", "TFTRTFP16Backend"),
    "tftrt_int8": ("tensorflow", "TFTRTInt8Backend"),
}
BACKEND_NAMES = tuple(_REGISTRY)


def make_backend(name: str, path: str | Path, **options) -> Backend:
    """Build backend `name` for the model file `path`; unknown names list the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    import importlib

    module_name, class_name = _REGISTRY[name]
    module = importlib.import_module(f"pilotnet_brain.runtime.{module_name}")
    return getattr(module, class_name)(Path(path), **options)


__all__ = ["Backend", "BackendUnavailable", "BACKEND_NAMES", "make_backend", "check_batch"]
