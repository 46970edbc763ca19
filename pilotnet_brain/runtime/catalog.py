"""The one table of PilotNet backends: what runs each file, what builds it, and its brain preset.

Every other list of backend names is derived from BACKENDS: the runtime registry (runtime/registry.py),
the optimisation methods of `pilotnet-brain optimize` (export/registry.py), the brain presets
(config/brains/<preset>.yaml, checked against this table by the tests) and `pilotnet-brain presets`
(which the Makefile's CPU_PRESETS reads). A backend's name is also the name of the export method that
builds its file. Builders are named by string: only export/ resolves them, so the run-time side never
imports build-time code.
"""

from __future__ import annotations

from dataclasses import dataclass

#: File kinds: how a backend's model file is stored.
SAFETENSORS = "safetensors"  # the FP32 weights (metadata in the file's header)
TORCH_INT8 = "torch-int8"  # torch.save of a quantised state_dict, loaded with weights_only=True
ONNX = "onnx"
SAVEDMODEL = "savedmodel"  # a TensorFlow SavedModel directory
TFLITE = "tflite"
#: Kinds run by PyTorch; every other kind runs without torch installed.
TORCH_FILE_KINDS = (SAFETENSORS, TORCH_INT8)

#: The preset of the explicit (expert) brain: a brain preset that runs no backend.
EXPLICIT_PRESET = "explicit"


@dataclass(frozen=True)
class BackendSpec:
    name: str  # backend name, and the export method that builds its file
    runtime: str  # "module:Class" in pilotnet_brain.runtime
    precision: str  # fp32 | fp16 | int8 | int8-dynamic
    file_kind: str  # one of the file kinds above
    builder: str  # "module:function" in pilotnet_brain.export: builder(fp32_model, out_path, data) -> Path
    filename: str  # what `pilotnet-brain optimize` writes in its output directory
    needs: str = ""  # what building it needs beyond torch (the skip message); a GPU also to run it
    preset: str = ""  # config/brains/<preset>.yaml; "" = none
    gpu: bool = False  # runs only on an NVIDIA GPU

    @property
    def needs_torch(self) -> bool:
        """Whether running this backend needs PyTorch (building every variant does)."""
        return self.file_kind in TORCH_FILE_KINDS

    @property
    def runs_shipped_weights(self) -> bool:
        """Whether the backend runs the FP32 safetensors file, so the shipped weights are its default model."""
        return self.file_kind == SAFETENSORS


_GPU = "a CUDA GPU"
_ONNX = "onnx, onnxruntime"
_TF = "tensorflow-cpu"
_TFTRT = "TensorFlow with TensorRT and a GPU"

# Order: `pilotnet-brain optimize` builds, and the offline benchmark reports, in this order.
BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        # PyTorch (runtime/torch_fp32.py): eager FP32 baseline, traced+frozen FP32
        BackendSpec(
            "torch_fp32",
            "torch_fp32:TorchFP32Backend",
            "fp32",
            SAFETENSORS,
            "torch_variants:build_fp32_copy",
            "pilotnet_fp32.safetensors",
            preset="pilotnet_fp32",
        ),
        BackendSpec(
            "torch_fp32_traced",
            "torch_fp32:TorchTracedFP32Backend",
            "fp32",
            SAFETENSORS,
            "torch_variants:build_fp32_copy",
            "pilotnet_fp32.safetensors",
            preset="pilotnet_torch_fp32_traced",
        ),
        # PyTorch INT8, x86 engine (runtime/torch_int8.py)
        BackendSpec(
            "torch_int8_dynamic",
            "torch_int8:TorchDynamicInt8Backend",
            "int8",
            TORCH_INT8,
            "torch_variants:build_dynamic_int8",
            "pilotnet_int8_dynamic.pt",
            preset="pilotnet_torch_int8_dynamic",
        ),
        BackendSpec(
            "torch_int8_static",
            "torch_int8:TorchStaticInt8Backend",
            "int8",
            TORCH_INT8,
            "torch_variants:build_static_int8",
            "pilotnet_int8_static.pt",
            preset="pilotnet_torch_int8_static",
        ),
        BackendSpec(
            "torch_int8_qat",
            "torch_int8:TorchQATInt8Backend",
            "int8",
            TORCH_INT8,
            "torch_variants:build_qat_int8",
            "pilotnet_int8_qat.pt",
            preset="pilotnet_torch_int8_qat",
        ),
        # PyTorch on a CUDA GPU (runtime/torch_fp32.py): they run the FP32 file
        BackendSpec(
            "torch_cuda_fp32",
            "torch_fp32:TorchCudaFP32Backend",
            "fp32",
            SAFETENSORS,
            "torch_variants:build_fp32_copy",
            "pilotnet_fp32.safetensors",
            _GPU,
            preset="pilotnet_torch_cuda_fp32",
            gpu=True,
        ),
        BackendSpec(
            "torch_cuda_fp16",
            "torch_fp32:TorchCudaFP16Backend",
            "fp16",
            SAFETENSORS,
            "torch_variants:build_fp32_copy",
            "pilotnet_fp32.safetensors",
            _GPU,
            preset="pilotnet_torch_cuda_fp16",
            gpu=True,
        ),
        # ONNX Runtime (runtime/onnx.py)
        BackendSpec(
            "onnx_fp32",
            "onnx:OnnxFP32Backend",
            "fp32",
            ONNX,
            "onnx_variants:build_onnx_fp32",
            "pilotnet_fp32.onnx",
            _ONNX,
            preset="pilotnet_onnx_fp32",
        ),
        BackendSpec(
            "onnx_int8",
            "onnx:OnnxInt8Backend",
            "int8",
            ONNX,
            "onnx_variants:build_onnx_int8",
            "pilotnet_int8_qdq.onnx",
            _ONNX,
            preset="pilotnet_onnx_int8",
        ),
        # TensorFlow SavedModel, TFLite run by LiteRT, TF-TRT (runtime/tensorflow.py)
        BackendSpec(
            "tf_fp32",
            "tensorflow:TFSavedModelBackend",
            "fp32",
            SAVEDMODEL,
            "tf_variants:build_savedmodel",
            "pilotnet_savedmodel",
            _TF,
            preset="pilotnet_tf_fp32",
        ),
        BackendSpec(
            "tflite_fp32",
            "tensorflow:TFLiteFP32Backend",
            "fp32",
            TFLITE,
            "tf_variants:build_tflite_fp32",
            "pilotnet_fp32.tflite",
            _TF,
            preset="pilotnet_tflite_fp32",
        ),
        BackendSpec(
            "tflite_fp16",
            "tensorflow:TFLiteFP16Backend",
            "fp16",
            TFLITE,
            "tf_variants:build_tflite_fp16",
            "pilotnet_fp16.tflite",
            _TF,
            preset="pilotnet_tflite_fp16",
        ),
        BackendSpec(
            "tflite_dynamic",
            "tensorflow:TFLiteDynamicBackend",
            "int8-dynamic",
            TFLITE,
            "tf_variants:build_tflite_dynamic",
            "pilotnet_dynamic.tflite",
            _TF,
            preset="pilotnet_tflite_dynamic",
        ),
        BackendSpec(
            "tflite_int8",
            "tensorflow:TFLiteInt8Backend",
            "int8",
            TFLITE,
            "tf_variants:build_tflite_int8",
            "pilotnet_int8.tflite",
            _TF,
            preset="pilotnet_tflite_int8",
        ),
        BackendSpec(
            "tftrt_fp32",
            "tensorflow:TFTRTFP32Backend",
            "fp32",
            SAVEDMODEL,
            "tf_variants:build_tftrt_fp32",
            "pilotnet_tftrt_fp32",
            _TFTRT,
            preset="pilotnet_tftrt_fp32",
            gpu=True,
        ),
        BackendSpec(
            "tftrt_fp16",
            "tensorflow:TFTRTFP16Backend",
            "fp16",
            SAVEDMODEL,
            "tf_variants:build_tftrt_fp16",
            "pilotnet_tftrt_fp16",
            _TFTRT,
            preset="pilotnet_tftrt_fp16",
            gpu=True,
        ),
        BackendSpec(
            "tftrt_int8",
            "tensorflow:TFTRTInt8Backend",
            "int8",
            SAVEDMODEL,
            "tf_variants:build_tftrt_int8",
            "pilotnet_tftrt_int8",
            _TFTRT,
            preset="pilotnet_tftrt_int8",
            gpu=True,
        ),
    )
}
BACKEND_NAMES = tuple(BACKENDS)


def backend_spec(name: str) -> BackendSpec:
    """The table row of backend `name`; an unknown name raises ValueError listing the valid ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}") from None


def preset_names(cpu_only: bool = False) -> list[str]:
    """The brain presets (config/brains/<name>.yaml): the explicit brain's, then one per backend in table
    order; cpu_only leaves out the backends that need a GPU."""
    backend_presets = [s.preset for s in BACKENDS.values() if s.preset and not (cpu_only and s.gpu)]
    return [EXPLICIT_PRESET, *backend_presets]
