"""TensorFlow-family backends: SavedModel (`tf_fp32`), TFLite via LiteRT (`tflite_fp32`, `tflite_fp16`,
`tflite_dynamic`, `tflite_int8`) and TF-TRT (`tftrt_fp32`, `tftrt_fp16`, `tftrt_int8`).

All take the shared NCHW batch. SavedModels transpose to NHWC inside; TFLite files built by this
version take the space-to-depth NHWC input named by `input_layout` in their metadata
(tf_variants.S2D_LAYOUT), rearranged here; older NCHW-input files still load. TFLite files run with LiteRT
(`ai-edge-litert`), which needs no TensorFlow at run time. SavedModels and .tflite files are graphs and
flatbuffers, not pickles: loading them executes no Python code. Files come with `<file>.json` beside
them (pilotnet_brain.export.tf_variants) giving the label ranges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotnet_brain.errors import BackendUnavailable, ModelFileError
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.model.space_to_depth import s2d_shape, space_to_depth
from pilotnet_brain.runtime.base import Backend
from pilotnet_brain.runtime.metadata import load_variant_metadata

TF_INSTALL = "pip install 'pilotnet_brain[tf]'"
SIGNATURE = "serving_default"
TFTRT_UNAVAILABLE = "TF-TRT needs TensorFlow built with TensorRT and an NVIDIA GPU; this TensorFlow has none"

#: Input layout of the TFLite files: space-to-depth by 2 of the NCHW batch, NHWC 33 x 100 x 12, the
#: 12 channels ordered (c, dy, dx) -- see space_to_depth. conv0 (5x5 stride 2 over 3 channels) becomes an
#: exact 3x3 stride-1 convolution over 12 channels (s2d_conv0_kernel), much cheaper in XNNPACK's INT8
#: kernels, and the graph has no transpose.
S2D_LAYOUT = "s2d2-nhwc-(c,dy,dx)"
NCHW_LAYOUT = "NCHW (transposed inside)"


def require_tf():
    try:
        import tensorflow as tf  # noqa: PLC0415  (optional: only the TensorFlow backends need it)
    except ImportError:
        raise BackendUnavailable(f"TensorFlow is not installed: {TF_INSTALL} (tensorflow-cpu==2.21.0)") from None
    return tf


def tftrt_status(tf=None) -> tuple[bool, str]:
    """(available, reason): TF-TRT needs a TensorRT build of TensorFlow, TensorRT loadable, and a GPU."""
    tf = tf or require_tf()
    build = dict(tf.sysconfig.get_build_info())
    gpus = tf.config.list_physical_devices("GPU")
    missing = []
    if not build.get("is_tensorrt_build", False):
        missing.append("is_tensorrt_build=False")
    if not build.get("is_cuda_build", False):
        missing.append("is_cuda_build=False")
    if not getattr(getattr(tf, "experimental", None), "tensorrt", None):
        missing.append("no tf.experimental.tensorrt")
    if not gpus:
        missing.append("no GPU visible (tf.config.list_physical_devices('GPU') is empty)")
    if not missing:
        try:
            from tensorflow.python.compiler.tensorrt import utils as trt_utils  # noqa: PLC0415  (optional)

            if not trt_utils.is_loaded_tensorrt_version_greater_equal(7, 0, 0):
                missing.append("TensorRT libraries (libnvinfer) not loadable")
        except Exception as error:  # the check itself fails where libnvinfer is missing
            missing.append(f"TensorRT libraries not loadable ({error})")
    if missing:
        return False, f"{TFTRT_UNAVAILABLE} (TensorFlow {tf.__version__}: {'; '.join(missing)})"
    return True, ""


def require_tftrt():
    tf = require_tf()
    ok, reason = tftrt_status(tf)
    if not ok:
        raise BackendUnavailable(reason)
    return tf


def require_litert():
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415  (optional: the TFLite backends)
    except ImportError:
        raise BackendUnavailable(
            f"LiteRT is not installed: {TF_INSTALL} (or just pip install ai-edge-litert)"
        ) from None
    return Interpreter


def _check_device(device: str, allowed: tuple[str, ...], name: str) -> None:
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; choose cpu or cuda")
    if device not in allowed:
        raise BackendUnavailable(f"{name} runs on {' or '.join(allowed)} only, not {device!r}")


class TFSavedModelBackend(Backend):
    """The Keras port as a TensorFlow SavedModel (FP32), on the CPU (or a GPU with a CUDA TensorFlow)."""

    name = "tf_fp32"
    precision = "fp32"
    methods = ("tf_fp32",)

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        if device not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; choose cpu or cuda")
        self.metadata, self._ranges = load_variant_metadata(self.path, self.methods)
        self._load(self._prepare(device, threads))

    def _prepare(self, device: str, threads: int | None):
        tf = require_tf()
        if device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise BackendUnavailable(
                f"device 'cuda' requested but TensorFlow {tf.__version__} sees no GPU "
                "(tensorflow-cpu, or no NVIDIA driver/CUDA): install tensorflow[and-cuda] on a GPU machine"
            )
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # TensorFlow's runtime is already initialised in this process; its threads stay
        self.device = device
        self.threads = threads
        self._tf_device = "/GPU:0" if device == "cuda" else "/CPU:0"
        return tf

    def _load(self, tf) -> None:
        if not self.path.is_dir():
            raise ModelFileError(f"{self.path} is not a SavedModel directory")
        try:
            with tf.device(self._tf_device):
                self._module = tf.saved_model.load(str(self.path))
            fn = self._module.signatures[SIGNATURE]
        except Exception as error:
            raise ModelFileError(f"{self.path} is not a loadable PilotNet SavedModel: {error}") from None
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        if len(kwargs) != 1 or list(next(iter(kwargs.values())).shape[1:]) != list(INPUT_SHAPE) or len(outputs) != 1:
            raise ModelFileError(
                f"{self.path}: signature {SIGNATURE!r} is not PilotNet's (inputs {kwargs}, outputs {list(outputs)})"
            )
        self._fn = fn
        self._input = next(iter(kwargs))
        self._output = next(iter(outputs))
        self._tf = tf

    @property
    def label_ranges(self):
        return self._ranges

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        with self._tf.device(self._tf_device):
            return self._fn(**{self._input: self._tf.constant(batch)})[self._output].numpy()


class _TFTRTBackend(TFSavedModelBackend):
    """A TF-TRT SavedModel: needs a TensorRT build of TensorFlow and an NVIDIA GPU (device 'cuda')."""

    device = "cuda"

    def __init__(self, path: Path, device: str = "cuda", threads: int | None = None):
        Backend.__init__(self, path)
        _check_device(device, ("cuda",), self.name)
        require_tftrt()
        self.metadata, self._ranges = load_variant_metadata(self.path, self.methods)
        self._load(self._prepare(device, threads))


class TFTRTFP32Backend(_TFTRTBackend):
    name = "tftrt_fp32"
    precision = "fp32"
    methods = ("tftrt_fp32",)


class TFTRTFP16Backend(_TFTRTBackend):
    name = "tftrt_fp16"
    precision = "fp16"
    methods = ("tftrt_fp16",)


class TFTRTInt8Backend(_TFTRTBackend):
    name = "tftrt_int8"
    precision = "int8"
    methods = ("tftrt_int8",)


class TFLiteFP32Backend(Backend):
    """A .tflite file run by LiteRT (XNNPACK on the CPU). int8 inputs/outputs are (de)quantised here."""

    name = "tflite_fp32"
    precision = "fp32"
    methods = ("tflite_fp32",)

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        _check_device(device, ("cpu",), self.name)
        self.metadata, self._ranges = load_variant_metadata(self.path, self.methods)
        Interpreter = require_litert()
        if not self.path.is_file():
            raise ModelFileError(f"{self.path} is not a .tflite file")
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=int(threads) if threads else None)
            self.interpreter.allocate_tensors()
        except Exception as error:  # LiteRT raises ValueError / RuntimeError for bad flatbuffers
            raise ModelFileError(f"{self.path} is not a loadable TFLite model: {error}") from None
        settings = self.metadata["settings"]
        layout = settings.get("input_layout", NCHW_LAYOUT)
        if layout == S2D_LAYOUT:
            expected = list(s2d_shape(INPUT_SHAPE))
        elif layout == NCHW_LAYOUT:
            expected = list(INPUT_SHAPE)
        else:
            raise ModelFileError(
                f"{self.path}: unknown input_layout {layout!r} in its metadata "
                f"(this version reads {NCHW_LAYOUT!r} and {S2D_LAYOUT!r}); rebuild it"
            )
        self.input_layout = layout
        self._s2d = space_to_depth if layout == S2D_LAYOUT else None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if (
            len(inputs) != 1
            or len(outputs) != 1
            or list(inputs[0]["shape"][1:]) != expected
            or int(outputs[0]["shape"][-1]) != 2
        ):
            raise ModelFileError(
                f"{self.path}: not a PilotNet TFLite model with input layout {layout!r} (inputs "
                f"{[list(i['shape']) for i in inputs]}, expected [N, {', '.join(map(str, expected))}]; "
                f"outputs {[list(o['shape']) for o in outputs]})"
            )
        self._in, self._out = inputs[0], outputs[0]
        self._batch = int(self._in["shape"][0])
        self._float_io = self._in["dtype"] == np.float32 and self._out["dtype"] == np.float32
        self.device = device
        self.threads = threads

    @property
    def label_ranges(self):
        return self._ranges

    def _resize(self, n: int) -> None:
        self.interpreter.resize_tensor_input(self._in["index"], [n, *self._in["shape"][1:]], strict=False)
        self.interpreter.allocate_tensors()
        self._in, self._out = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self._batch = n

    def _quantize(self, batch: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        if dtype == np.float32:
            return batch
        scale, zero = self._in["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.rint(batch * (1.0 / scale)) + zero, info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if y.dtype == np.float32:
            return y
        scale, zero = self._out["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            self._resize(len(batch))
        interpreter = self.interpreter
        if self._s2d is not None and self._float_io:
            # Rearranged straight into the interpreter's input buffer (the view is dropped before invoke).
            self._s2d(batch, out=interpreter.tensor(self._in["index"])())
            interpreter.invoke()
            return interpreter.get_tensor(self._out["index"])
        if self._s2d is not None:
            batch = self._s2d(batch)
        interpreter.set_tensor(self._in["index"], self._quantize(batch))
        interpreter.invoke()
        return self._dequantize(interpreter.get_tensor(self._out["index"]))


class TFLiteFP16Backend(TFLiteFP32Backend):
    name = "tflite_fp16"
    precision = "fp16"
    methods = ("tflite_fp16",)


class TFLiteDynamicBackend(TFLiteFP32Backend):
    name = "tflite_dynamic"
    precision = "int8-dynamic"
    methods = ("tflite_dynamic",)


class TFLiteInt8Backend(TFLiteFP32Backend):
    name = "tflite_int8"
    precision = "int8"
    methods = ("tflite_int8",)
