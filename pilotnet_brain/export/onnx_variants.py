"""ONNX variants of the FP32 PilotNet: an FP32 export and a static INT8 (QDQ) model for ONNX Runtime.

- `build_onnx_fp32`: `torch.onnx.export` (opset 17, dynamic batch axis, checked with onnx.checker).
- `build_onnx_int8`: static INT8 in QDQ format, per-channel weights, calibrated on `data.calibration`
  with ONNX Runtime's `quant_pre_process` (shape inference + graph optimisation) first. Dynamic INT8
  is deliberately not offered: for a conv net on ONNX Runtime it is several times *slower* than FP32.

Every builder writes `<file>.json` beside its output (export/metadata.py; schema in runtime/metadata.py):
the FP32 model's metadata (architecture, input shape, label ranges, ...) plus the method and its
settings. onnx/onnxruntime are imported lazily, so the rest of the package works without them.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from pilotnet_brain.data.calibration import OptimizeData
from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.export.metadata import write_variant_metadata
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.model.space_to_depth import s2d_shape
from pilotnet_brain.runtime.base import check_batch

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"
ONNX_INSTALL = "pip install 'pilotnet_brain[onnx]'"


def require_onnx():
    try:
        import onnx  # noqa: PLC0415  (optional: onnx)
        import onnxruntime  # noqa: PLC0415  (optional: onnxruntime)
    except ImportError as error:
        raise BackendUnavailable(
            f"ONNX variants need onnx and onnxruntime ({error.name} is missing): {ONNX_INSTALL}"
        ) from None
    return onnx, onnxruntime


def _prepend_space_to_depth(proto, s2d_input: str) -> None:
    """Make the graph input `s2d_input` (N x 4C x H/2 x W/2) the output of a SpaceToDepth(2) node fed by
    a new NCHW graph input INPUT_NAME, so callers still pass the preprocessed NCHW batch."""
    from onnx import TensorProto, helper  # noqa: PLC0415  (optional: onnx)

    old = next(i for i in proto.graph.input if i.name == s2d_input)
    proto.graph.input.remove(old)
    proto.graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", *INPUT_SHAPE]))
    proto.graph.node.insert(
        0, helper.make_node("SpaceToDepth", [INPUT_NAME], [s2d_input], blocksize=2, name="space_to_depth")
    )


def export_onnx(
    fp32_model: Path,
    out_path: Path,
    fold_bn: bool = False,
    s2d: bool = False,
    fc_as_conv: bool = False,
    pair_conv0: bool = False,
) -> Path:
    """The FP32 PilotNet as ONNX (opset 17, batch axis dynamic), validated with onnx.checker.

    The rewrites (optimize.rewrites) are exact: s2d=True (needs fold_bn) starts the graph with
    SpaceToDepth(2) and runs conv0 as its 3x3 stride-1 form over 12 channels, the input still being
    the NCHW batch; pair_conv0=True (needs s2d) then computes two adjacent output columns per position
    of conv0; fc_as_conv=True runs the first two Linear layers as convolutions."""

    import torch  # noqa: PLC0415  (optional: torch)

    from pilotnet_brain.model.rewrites import (  # noqa: PLC0415  (optional: torch)
        fc_as_conv_model,
        fold_input_norm,
        paired_conv0_model,
        space_to_depth_model,
    )
    from pilotnet_brain.model.weights import load_model  # noqa: PLC0415  (optional: torch)

    onnx, _ = require_onnx()
    if s2d and not fold_bn:
        raise ValueError("the space-to-depth export needs the input BatchNorm folded (fold_bn=True)")
    if pair_conv0 and not s2d:
        raise ValueError("pair_conv0 applies to the space-to-depth conv0 (s2d=True)")
    model, _, _ = load_model(fp32_model)
    if fold_bn:
        model = fold_input_norm(model)
    if fc_as_conv:
        model = fc_as_conv_model(model, INPUT_SHAPE)
    if s2d:
        model = space_to_depth_model(model)
        if pair_conv0:
            model = paired_conv0_model(model)
        h, w, c = s2d_shape(INPUT_SHAPE)
        example, input_name = torch.zeros(1, c, h, w), "input_s2d"
    else:
        example, input_name = torch.zeros(1, *INPUT_SHAPE), INPUT_NAME
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) is deprecated upstream but needs no onnxscript and
        # gives a clean Conv/Gemm graph for this static network; torch is pinned (setup.py).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(out_path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
            dynamic_axes={input_name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    proto = onnx.load(str(out_path))
    if s2d:
        _prepend_space_to_depth(proto, input_name)
        onnx.save(proto, str(out_path))
    onnx.checker.check_model(proto, full_check=True)
    return out_path


def build_onnx_fp32(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    out_path = export_onnx(Path(fp32_model), Path(out_path))
    write_variant_metadata(
        fp32_model,
        out_path,
        "onnx_fp32",
        {
            "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
            "dynamic_axes": {"input": "batch", "output": "batch"},
            "input_layout": "NCHW",
        },
    )
    return out_path


class _CalibrationReader:
    """onnxruntime.quantization CalibrationDataReader over preprocessed frames, in small batches of one
    size (the histogram calibrators fail on a shorter last batch), the largest that divides the set."""

    def __init__(self, frames: np.ndarray, max_batch_size: int = 16):
        self.frames = np.ascontiguousarray(frames, np.float32)
        self.batch_size = max(d for d in range(1, max_batch_size + 1) if len(self.frames) % d == 0)
        self.rewind()

    def get_next(self):
        if self._i >= len(self.frames):
            return None
        batch = self.frames[self._i : self._i + self.batch_size]
        self._i += self.batch_size
        return {INPUT_NAME: batch}

    def rewind(self):
        self._i = 0


def _float_nodes(model_path: Path, first_conv: bool, regressor: bool) -> list[str]:
    """Names of the nodes to keep in FP32: the first convolution and/or the small fully connected
    layers (100-50-10-2) that follow the two large ones."""
    import onnx  # noqa: PLC0415  (optional: onnx)

    nodes = onnx.load(str(model_path)).graph.node
    names = [next(n.name for n in nodes if n.op_type == "Conv")] if first_conv else []
    if regressor:
        names += [n.name for n in nodes if n.op_type == "Gemm"][-3:]
    return names


#: How build_onnx_int8 runs the first convolution (5x5 stride 2 over 3 channels).
FIRST_CONV_MODES = ("int8-s2d", "fp32", "int8")


def build_onnx_int8(
    fp32_model: Path,
    out_path: Path,
    data: OptimizeData,
    calibrate_method: str = "Percentile",
    per_channel: bool = True,
    first_conv: str = "int8-s2d",
    fc_as_conv: bool = True,
    float_regressor: bool = True,
    pair_conv0: bool = True,
) -> Path:
    """Static INT8 QDQ model (int8 weights per channel, int8 activations), calibrated on data.calibration.

    first_conv picks how the 3-channel first convolution runs; ONNX Runtime's QLinearConv is slow on 3
    input channels (NHWC im2col with K = 75). Measured on this model, batch 1, 1 thread, idle machine:
    - "int8-s2d" (default): SpaceToDepth(2) in the graph, then conv0 as an exact 3x3 stride-1 INT8
      convolution over 12 channels: 0.265 ms per call (5.3x torch eager FP32) in a quick bench on the
      stage-1 weights; 0.284 ms (4.75x) in the offline benchmark of 2026-12-02 (see README);
    - "fp32": conv0 stays FP32 (NCHWc kernel), the INT8 graph starts at its output: 0.329 ms;
    - "int8": conv0 quantised as it is: slower still (~0.375 ms summed kernel time).
    fc_as_conv=True (default) runs the 1152 x 1164 and 1164 x 100 Linear layers as convolutions over the
    last NHWC feature map (optimize.rewrites, exact): ORT then uses its symmetric INT8 convolution
    kernel instead of QGemm, and the NHWC -> NCHW transpose moves to a 100-value tensor. Profiled
    (2026-12-03, other core busy): that layer 56 -> 44 us; per-call CPU time 264 -> 237 us (best of 12
    rounds of 300 calls, A/B in one process).
    calibrate_method="Percentile" (ORT's default 99.999th percentile of |x|): worst test-circuit MSE
    1.12x FP32's with MinMax, ~1.0x with Percentile (FP32 regressor both times; shipped 2026-12-03
    weights); Entropy did no better than MinMax. Same graph, same speed.
    float_regressor=True (default) keeps the three small Linear layers (100-50-10-2, 0.4 % of the
    multiply-adds) in FP32: quantised, they doubled the error in v (test MSE 1.8x FP32's on
    simple_circuit, shipped 2026-12-03 weights; FP32 tail 1.1x), at no measurable cost in latency
    (0.279 against 0.281 ms, A/B in one process, idle machine).
    pair_conv0=True (default, with "int8-s2d") computes two adjacent output columns per position of
    conv0 (48 channels at half width, exact; optimize.rewrites): MLAS's symmetric INT8 convolution
    kernel works on 64 output channels at a time, so 24 left most of it idle. conv0 ~81 -> ~71 us in a
    profile; per call 0.279 -> 0.268 ms (A/B in one process, idle machine, 2026-12-03).
    Also tried, and not kept: ORT's weight-only MatMulNBits for that Linear (8-bit 0.277 ms, 4-bit
    0.266 ms per call); QuantizeLinear before SpaceToDepth (int8 rearrangement): exact, but 0.46 ms;
    feeding the space-to-depth input in NHWC from numpy (no graph transpose): the numpy rearrangement
    costs ~33 us, more than it saves; conv0 over a zero-padded 4th input channel (so the 5x5 stride-2
    convolution qualifies for the symmetric kernel): 115 us against 75 us for the 3x3 rewrite; I/O
    binding per call: no gain; the space-to-depth rearrangement as Reshape/Transpose straight into the
    NHWC layout the INT8 convolutions use: ORT's 6-D Transpose takes ~150 us against ~40 us for
    SpaceToDepth + QuantizeLinear + Transpose.
    """
    if first_conv not in FIRST_CONV_MODES:
        raise ValueError(f"unknown first_conv {first_conv!r}; choose one of {FIRST_CONV_MODES}")

    require_onnx()
    from onnxruntime.quantization import (  # noqa: PLC0415  (optional: onnxruntime)
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )  # noqa: PLC0415  (optional: onnxruntime)
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415  (optional: onnxruntime)

    if data is None or data.calibration is None or len(data.calibration) == 0:
        raise ValueError("onnx_int8 needs calibration frames (OptimizeData.calibration)")
    calibration = check_batch(data.calibration)
    reader_cls = type("CalibrationReader", (_CalibrationReader, CalibrationDataReader), {})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    s2d = first_conv == "int8-s2d"
    paired = pair_conv0 and s2d
    with tempfile.TemporaryDirectory(prefix="pilotnet_onnx_") as tmp:
        fp32_onnx = export_onnx(
            Path(fp32_model), Path(tmp) / "fp32.onnx", fold_bn=True, s2d=s2d, fc_as_conv=fc_as_conv, pair_conv0=paired
        )
        prepared = Path(tmp) / "fp32_prepared.onnx"
        quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=False)
        excluded = _float_nodes(prepared, first_conv=first_conv == "fp32", regressor=float_regressor)
        quantize_static(
            str(prepared),
            str(out_path),
            reader_cls(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, calibrate_method),
            nodes_to_exclude=excluded,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    import onnx  # noqa: PLC0415  (optional: onnx)

    onnx.checker.check_model(onnx.load(str(out_path)), full_check=True)
    write_variant_metadata(
        fp32_model,
        out_path,
        "onnx_int8",
        {
            "opset": OPSET,
            "quant_format": "QDQ",
            "per_channel": per_channel,
            "weight_type": "int8 (symmetric)",
            "activation_type": "int8 (asymmetric)",
            "calibrate_method": calibrate_method,
            "calibration_frames": int(len(calibration)),
            "calibration_seed": int(getattr(data, "seed", 0)),
            "pre_process": "quant_pre_process",
            "input_batchnorm": "folded into the first convolution",
            "input_layout": "NCHW",
            "first_conv": first_conv,
            "fc_as_conv": fc_as_conv,
            "pair_conv0": paired,
            "float_nodes": excluded,
        },
    )
    return out_path
