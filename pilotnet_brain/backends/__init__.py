"""Backend registry: build a PilotNet inference backend from a name and a model file."""
from __future__ import annotations

from pathlib import Path

from .base import Backend, BackendUnavailable, check_batch

#: name -> (module, class). Imports are lazy so a missing optional runtime only affects its backends.
_REGISTRY = {
    # PyTorch (torch_backend.py): eager FP32 baseline, traced+frozen FP32, CUDA FP32/FP16
    "torch_fp32": ("torch_backend", "TorchFP32Backend"),
    "torch_fp32_traced": ("torch_backend", "TorchTracedFP32Backend"),
    "torch_cuda_fp32": ("torch_backend", "TorchCudaFP32Backend"),
    "torch_cuda_fp16": ("torch_backend", "TorchCudaFP16Backend"),
    # PyTorch INT8 (torch_quant_backend.py)
    "torch_int8_dynamic": ("torch_quant_backend", "TorchDynamicInt8Backend"),
    "torch_int8_static": ("torch_quant_backend", "TorchStaticInt8Backend"),
    "torch_int8_qat": ("torch_quant_backend", "TorchQATInt8Backend"),
    # ONNX Runtime (onnx_backend.py)
    "onnx_fp32": ("onnx_backend", "OnnxFP32Backend"),
    "onnx_int8": ("onnx_backend", "OnnxInt8Backend"),
    # TensorFlow / LiteRT / TF-TRT (tf_backend.py)
    "tf_fp32": ("tf_backend", "TFSavedModelBackend"),
    "tflite_fp32": ("tf_backend", "TFLiteFP32Backend"),
    "tflite_fp16": ("tf_backend", "TFLiteFP16Backend"),
    "tflite_dynamic": ("tf_backend", "TFLiteDynamicBackend"),
    "tflite_int8": ("tf_backend", "TFLiteInt8Backend"),
    "tftrt_fp32": ("tf_backend", "TFTRTFP32Backend"),
    "tftrt_fp16": ("tf_backend", "TFTRTFP16Backend"),
    "tftrt_int8": ("tf_backend", "TFTRTInt8Backend"),
}
BACKEND_NAMES = tuple(_REGISTRY)


def make_backend(name: str, path: str | Path, **options) -> Backend:
    """Build backend `name` for the model file `path`; unknown names list the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    import importlib

    module_name, class_name = _REGISTRY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, class_name)(Path(path), **options)


__all__ = ["Backend", "BackendUnavailable", "BACKEND_NAMES", "make_backend", "check_batch"]
