"""TensorFlow variants of the FP32 PilotNet, built on its Keras port (export/keras_port.py): a SavedModel,
TFLite (FP32, FP16, dynamic-range INT8, full INT8) and TF-TRT (FP32, FP16, INT8; needs TensorRT and a GPU).

The SavedModel, the FP32/FP16 TFLite files and the TF-TRT models take the same NCHW batch as every
other backend (N x 3 x 66 x 200, from pilotnet_brain.model.preprocessing). The INT8 and dynamic-range
TFLite files (S2D_METHODS) instead take a space-to-depth NHWC input (S2D_LAYOUT, 33 x 100 x 12; the
backend rearranges the NCHW batch with space_to_depth) with conv0 rewritten as an exact 3x3 stride-1
convolution: XNNPACK's INT8 kernel for the 3-channel 5x5 stride-2 conv0 was over half of the invoke.
The layout is recorded as settings.input_layout in the metadata. Every builder writes
`<output>.json` beside its output (see export/metadata.py). TensorFlow is imported
lazily; without it the builders raise BackendUnavailable naming the extra to install.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from pilotnet_brain.data.calibration import OptimizeData
from pilotnet_brain.export.keras_port import INPUT_NAME, OUTPUT_NAME, keras_from_fp32, port_check
from pilotnet_brain.export.metadata import write_variant_metadata
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.model.space_to_depth import s2d_shape, space_to_depth
from pilotnet_brain.runtime.base import check_batch
from pilotnet_brain.runtime.tensorflow import NCHW_LAYOUT, S2D_LAYOUT, SIGNATURE, require_tf, require_tftrt


def _serving_module(keras_model):
    """tf.Module whose `serve` maps {'input': N x 3 x 66 x 200} (or the model's input shape,
    e.g. space-to-depth) -> {'output': N x 2}."""
    tf = require_tf()
    INPUT_SHAPE = tuple(int(d) for d in keras_model.input.shape[1:])

    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32, name=INPUT_NAME)])
        def serve(self, x):
            return {OUTPUT_NAME: self.model(x, training=False)}

    return Serving(keras_model)


def _save_savedmodel(keras_model, out_dir: Path) -> Path:
    """A SavedModel with one signature `serving_default` (see _serving_module)."""
    tf = require_tf()
    module = _serving_module(keras_model)
    _clear(out_dir)
    tf.saved_model.save(module, str(out_dir), signatures={SIGNATURE: module.serve})
    return out_dir


def _clear(out_path: Path) -> None:
    out_path = Path(out_path)
    if out_path.is_dir():
        shutil.rmtree(out_path)
    elif out_path.exists():
        out_path.unlink()
    out_path.parent.mkdir(parents=True, exist_ok=True)


def _calibration(data: OptimizeData | None, method: str) -> np.ndarray:
    if data is None or data.calibration is None or len(data.calibration) == 0:
        raise ValueError(f"{method} needs calibration frames (OptimizeData.calibration)")
    return check_batch(data.calibration)


def build_savedmodel(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    keras_model, torch_model, _ = keras_from_fp32(Path(fp32_model))
    settings = {
        "format": "tf_saved_model",
        "signature": SIGNATURE,
        "input_layout": "NCHW (transposed inside)",
        "tensorflow": require_tf().__version__,
    }
    if data is not None and data.calibration is not None and len(data.calibration):
        settings["port_max_abs_diff"] = port_check(keras_model, torch_model, data.calibration[:32])
    out_path = _save_savedmodel(keras_model, Path(out_path))
    write_variant_metadata(fp32_model, out_path, "tf_fp32", settings)
    return out_path


# --- TFLite ------------------------------------------------------------------------------------------
#: TFLite methods built on the space-to-depth input (S2D_LAYOUT); the others take NCHW.
S2D_METHODS = {"tflite_dynamic", "tflite_int8"}  # FP32/FP16: ~8% slower with S2D in XNNPACK


def _build_tflite(
    fp32_model: Path, out_path: Path, data: OptimizeData | None, method: str, s2d: bool | None = None
) -> Path:
    if method not in ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8"):
        raise ValueError(f"unknown TFLite method {method!r}")
    tf = require_tf()
    out_path = Path(out_path)
    s2d = method in S2D_METHODS if s2d is None else s2d
    # The input BatchNorm folded into conv0: one pass less, and for INT8 no per-tensor-quantised
    # BatchNorm output in front of the first convolution.
    keras_model, _, _ = keras_from_fp32(Path(fp32_model), fold_bn=True, s2d=s2d)
    settings = {
        "format": "tflite",
        "runtime": "ai-edge-litert",
        "input_layout": S2D_LAYOUT if s2d else NCHW_LAYOUT,
        "input_batchnorm": "folded into conv0",
        "tensorflow": tf.__version__,
    }
    if s2d:
        settings["input_shape_nhwc"] = list(s2d_shape())
        settings["conv0"] = "3x3 stride 1 over the space-to-depth input (exact rewrite of 5x5 stride 2)"
    # From the concrete function with the variables frozen into constants: converting the Keras 3
    # SavedModel directly keeps VAR_HANDLE/READ_VARIABLE ops (weights re-read and re-transposed every
    # invoke, and INT8 calibration fails on them).
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: PLC0415  (optional: tensorflow)

    module = _serving_module(keras_model)
    frozen = convert_variables_to_constants_v2(module.serve.get_concrete_function())

    def new_converter():
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen], module)

    converter = new_converter()
    tflite = None
    if method == "tflite_fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        settings.update(weights="float16", activations="float32")
    elif method == "tflite_dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        settings.update(weights="int8 (dynamic range)", activations="float32, int8 where kernels allow")
    elif method == "tflite_int8":
        calibration = _calibration(data, method)

        def representative():
            for frame in calibration:
                yield [space_to_depth(frame[None]) if s2d else frame[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # The small regressor (100-50-10-2, 0.4 % of the multiply-adds) stays FP32, as in onnx_int8:
        # quantised, it doubled the error in v (test MSE 1.8x FP32's), at no latency gain. TFLite's
        # selective quantisation is the QuantizationDebugger's denylist.
        float_nodes = _regressor_tail_outputs(new_converter().convert())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        with warnings.catch_warnings():
            # The debugger builds a tf.lite.Interpreter internally (deprecated); we run LiteRT.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=representative,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes),
            )
            tflite = debugger.get_nondebug_quantized_model()
        # float32 I/O: the in-graph QUANTIZE/DEQUANTIZE ops are far cheaper than doing it in numpy.
        settings.update(
            weights="int8 per channel",
            activations="int8",
            io="float32 (quantised in the graph)",
            float_nodes=float_nodes,
            calibration_frames=int(len(calibration)),
            calibration_seed=int(getattr(data, "seed", 0)),
        )
    else:
        settings.update(weights="float32", activations="float32")
    if tflite is None:
        tflite = converter.convert()
    _clear(out_path)
    out_path.write_bytes(tflite)
    write_variant_metadata(fp32_model, out_path, method, settings)
    return out_path


def _regressor_tail_outputs(float_tflite: bytes) -> list[str]:
    """Output tensor names of the last three FULLY_CONNECTED ops (100-50-10-2) of a float TFLite model."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415  (optional: ai-edge-litert)

    interpreter = Interpreter(model_content=float_tflite)
    fully_connected = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    if len(fully_connected) != 5:
        raise ValueError(f"expected PilotNet's 5 fully connected layers, found {len(fully_connected)}")
    return [interpreter._get_tensor_details(op["outputs"][0], 0)["name"] for op in fully_connected[-3:]]


def build_tflite_fp32(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    return _build_tflite(fp32_model, out_path, data, "tflite_fp32")


def build_tflite_fp16(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    return _build_tflite(fp32_model, out_path, data, "tflite_fp16")


def build_tflite_dynamic(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    return _build_tflite(fp32_model, out_path, data, "tflite_dynamic")


def build_tflite_int8(fp32_model: Path, out_path: Path, data: OptimizeData) -> Path:
    return _build_tflite(fp32_model, out_path, data, "tflite_int8")


# --- TF-TRT ------------------------------------------------------------------------------------------
def _build_tftrt(fp32_model: Path, out_path: Path, data: OptimizeData | None, precision: str) -> Path:
    """SavedModel -> TF-TRT SavedModel with engines built for batch 1 (and INT8 calibrated)."""
    tf = require_tftrt()
    out_path = Path(out_path)
    method = f"tftrt_{precision.lower()}"
    calibration = _calibration(data, method) if precision == "INT8" else None
    keras_model, _, _ = keras_from_fp32(Path(fp32_model))
    with tempfile.TemporaryDirectory(prefix="pilotnet_tftrt_") as tmp:
        saved = _save_savedmodel(keras_model, Path(tmp) / "savedmodel")
        converter = tf.experimental.tensorrt.Converter(
            input_saved_model_dir=str(saved),
            input_saved_model_signature_key=SIGNATURE,
            precision_mode=precision,
            max_workspace_size_bytes=1 << 30,
            use_calibration=precision == "INT8",
            maximum_cached_engines=4,
        )
        if calibration is not None:

            def calibration_input():
                for start in range(0, len(calibration), 8):
                    yield (tf.constant(calibration[start : start + 8]),)

            converter.convert(calibration_input_fn=calibration_input)
        else:
            converter.convert()

        def build_input():
            yield (tf.zeros([1, *INPUT_SHAPE], tf.float32),)

        converter.build(input_fn=build_input)
        _clear(out_path)
        converter.save(str(out_path))
    write_variant_metadata(
        fp32_model,
        out_path,
        method,
        {
            "format": "tf_saved_model (TF-TRT)",
            "precision_mode": precision,
            "signature": SIGNATURE,
            "engines_built_for_batch": [1],
            "tensorflow": tf.__version__,
            **({"calibration_frames": int(len(calibration))} if calibration is not None else {}),
        },
    )
    return out_path


def build_tftrt_fp32(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    return _build_tftrt(fp32_model, out_path, data, "FP32")


def build_tftrt_fp16(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    return _build_tftrt(fp32_model, out_path, data, "FP16")


def build_tftrt_int8(fp32_model: Path, out_path: Path, data: OptimizeData) -> Path:
    return _build_tftrt(fp32_model, out_path, data, "INT8")
