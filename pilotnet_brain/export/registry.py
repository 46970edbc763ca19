"""Which optimisation method builds which file for which backend."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str  # also the backend name that runs the result
    module: str  # module in pilotnet_brain.export with the builder
    builder: str  # builder(fp32_model: Path, out_path: Path, data: OptimizeData) -> Path
    filename: str  # written inside the output directory
    needs: str = ""  # what the builder needs beyond torch, for the skip message


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("torch_fp32", "torch_variants", "build_fp32_copy", "pilotnet_fp32.safetensors"),
        Method("torch_fp32_traced", "torch_variants", "build_fp32_copy", "pilotnet_fp32.safetensors"),
        Method("torch_int8_dynamic", "torch_variants", "build_dynamic_int8", "pilotnet_int8_dynamic.pt"),
        Method("torch_int8_static", "torch_variants", "build_static_int8", "pilotnet_int8_static.pt"),
        Method("torch_int8_qat", "torch_variants", "build_qat_int8", "pilotnet_int8_qat.pt"),
        Method("torch_cuda_fp32", "torch_variants", "build_fp32_copy", "pilotnet_fp32.safetensors", "a CUDA GPU"),
        Method("torch_cuda_fp16", "torch_variants", "build_fp32_copy", "pilotnet_fp32.safetensors", "a CUDA GPU"),
        Method("onnx_fp32", "onnx_variants", "build_onnx_fp32", "pilotnet_fp32.onnx", "onnx, onnxruntime"),
        Method("onnx_int8", "onnx_variants", "build_onnx_int8", "pilotnet_int8_qdq.onnx", "onnx, onnxruntime"),
        Method("tf_fp32", "tf_variants", "build_savedmodel", "pilotnet_savedmodel", "tensorflow-cpu"),
        Method("tflite_fp32", "tf_variants", "build_tflite_fp32", "pilotnet_fp32.tflite", "tensorflow-cpu"),
        Method("tflite_fp16", "tf_variants", "build_tflite_fp16", "pilotnet_fp16.tflite", "tensorflow-cpu"),
        Method("tflite_dynamic", "tf_variants", "build_tflite_dynamic", "pilotnet_dynamic.tflite", "tensorflow-cpu"),
        Method("tflite_int8", "tf_variants", "build_tflite_int8", "pilotnet_int8.tflite", "tensorflow-cpu"),
        Method(
            "tftrt_fp32", "tf_variants", "build_tftrt_fp32", "pilotnet_tftrt_fp32", "TensorFlow with TensorRT and a GPU"
        ),
        Method(
            "tftrt_fp16", "tf_variants", "build_tftrt_fp16", "pilotnet_tftrt_fp16", "TensorFlow with TensorRT and a GPU"
        ),
        Method(
            "tftrt_int8", "tf_variants", "build_tftrt_int8", "pilotnet_tftrt_int8", "TensorFlow with TensorRT and a GPU"
        ),
    )
}


def builder_for(method: Method):
    module = importlib.import_module(f"pilotnet_brain.export.{method.module}")
    return getattr(module, method.builder)
