"""PilotNet's PyTorch INT8 architectures (eager torch.ao, x86 engine) and their safe file reader.

Run time and build time share these: the builders in export/torch_variants.py prepare, calibrate and
convert them; the runtime rebuilds the same structure from code and loads a state_dict with
torch.load(weights_only=True), so no pickled code ever runs. The metadata embedded in the file is read
by runtime/metadata.py, like every variant's. Why eager torch.ao: see export/torch_variants.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.model.network import PilotNet
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.model.rewrites import fold_input_norm
from pilotnet_brain.model.weights import state_dict_mismatch

ENGINE = "x86"
FORMAT = "pilotnet_brain.torch_quantized/2"  # /2: FP32 regressor tail
INT8_METHODS = ("torch_int8_dynamic", "torch_int8_static", "torch_int8_qat")
#: x86 activations use the reduced range 0..127 (reduce_range=True: no int16 overflow on AVX2).
INPUT_SCALE = 1.0 / 127.0
CONV_RELU_PAIRS = [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"], ["8", "9"]]
LINEAR_RELU_PAIRS = [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]
#: regressor[FLOAT_TAIL_FROM:] (Linear 1164-100-50-10-2, ~0.1 M MACs of PilotNet's ~27 M) stays FP32:
#: quantising those narrow layers cost 1.17-1.44x FP32's test MSE (static); in FP32 it is 1.02-1.04x
#: for ~3% of the INT8 latency (measured: 2.07x vs 2.14x FP32 eager, batch 1, 1 thread).
FLOAT_TAIL_FROM = 2
FLOAT_LAYERS = "regressor.2-8 (Linear 1164-100-50-10-2) in FP32 after a DeQuantStub"


# --- torch.ao access, quietly ----------------------------------------------------------------------
@contextlib.contextmanager
def quiet_torch_ao():
    """Silence torch.ao.quantization's deprecation chatter for the calls inside, and only there."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*deprecated.*")
        warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=r".*must run observer before calling calculate_qparams.*")
        yield


def torch_ao():
    with quiet_torch_ao():
        import torch.ao.quantization as tq  # noqa: PLC0415  (optional: torch)
    return tq


def use_engine() -> None:
    """Select the x86 quantized engine (a process-wide torch setting; every variant here uses it)."""
    if ENGINE not in torch.backends.quantized.supported_engines:
        raise RuntimeError(
            f"this torch build has no {ENGINE!r} quantized engine "
            f"(supported: {torch.backends.quantized.supported_engines})"
        )
    if torch.backends.quantized.engine != ENGINE:
        torch.backends.quantized.engine = ENGINE


# --- the quantisable network -----------------------------------------------------------------------
class QuantPilotNet(nn.Module):
    """PilotNet with its input BatchNorm folded: INT8 from the QuantStub to the DeQuantStub, which sits
    after regressor[FLOAT_TAIL_FROM - 1]; the small Linear layers after it run in FP32."""

    def __init__(self, net: PilotNet):
        super().__init__()
        tq = torch_ao()
        self.quant = tq.QuantStub()
        self.net = net
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        h = net.regressor[:FLOAT_TAIL_FROM](net.flatten(net.features(self.quant(x))))
        return net.regressor[FLOAT_TAIL_FROM:](self.dequant(h))


def _qconfig(qat: bool):
    tq = torch_ao()
    with quiet_torch_ao():
        return tq.get_default_qat_qconfig(ENGINE) if qat else tq.get_default_qconfig(ENGINE)


def _input_qconfig(qat: bool):
    """Fixed input quantisation: pixels in [0, 1] -> quint8 0..127 (scale 1/127, zero point 0)."""
    tq = torch_ao()
    observer = tq.FixedQParamsObserver.with_args(
        scale=INPUT_SCALE, zero_point=0, dtype=torch.quint8, quant_min=0, quant_max=127
    )
    weight = _qconfig(qat).weight
    if qat:
        return tq.QConfig(activation=tq.FixedQParamsFakeQuantize.with_args(observer=observer), weight=weight)
    return tq.QConfig(activation=observer, weight=weight)


def prepare_quantizable(model: PilotNet, qat: bool, skeleton: bool = False) -> QuantPilotNet:
    """Fold, wrap, fuse conv+ReLU / linear+ReLU, attach x86 per-channel qconfigs and observers.

    skeleton: only the converted structure is wanted (its numbers are replaced by load_state_dict),
    so cheap min/max activation observers stand in for the histogram ones (~0.55 s saved per load).
    """
    tq = torch_ao()
    use_engine()
    q = QuantPilotNet(fold_input_norm(model))
    with quiet_torch_ao():
        if qat:
            q.train()
            tq.fuse_modules_qat(q.net.features, CONV_RELU_PAIRS, inplace=True)
            tq.fuse_modules_qat(q.net.regressor, LINEAR_RELU_PAIRS, inplace=True)
        else:
            q.eval()
            tq.fuse_modules(q.net.features, CONV_RELU_PAIRS, inplace=True)
            tq.fuse_modules(q.net.regressor, LINEAR_RELU_PAIRS, inplace=True)
        q.qconfig = _qconfig(qat)
        if skeleton:
            q.qconfig = tq.QConfig(
                activation=tq.MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True), weight=q.qconfig.weight
            )
        q.quant.qconfig = _input_qconfig(qat)
        for layer in q.net.regressor[FLOAT_TAIL_FROM:]:
            layer.qconfig = None  # the FP32 tail: not observed, not converted
        (tq.prepare_qat if qat else tq.prepare)(q, inplace=True)
    return q


def convert_quantized(prepared: QuantPilotNet) -> QuantPilotNet:
    tq = torch_ao()
    use_engine()
    prepared.eval()
    with quiet_torch_ao():
        return tq.convert(prepared, inplace=False)


def dynamic_quantize(model: PilotNet) -> nn.Module:
    """Linear layers -> dynamic-range INT8 (per-channel weights, activations quantised per call)."""
    tq = torch_ao()
    use_engine()
    with quiet_torch_ao():
        return tq.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear: tq.per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=False
        )


def quantized_skeleton(method: str) -> nn.Module:
    """The converted architecture of `method` with placeholder weights (filled by load_state_dict)."""
    if method == "torch_int8_dynamic":
        return dynamic_quantize(PilotNet())
    if method in ("torch_int8_static", "torch_int8_qat"):
        # Static and QAT convert to the same quantised modules; only the numbers differ.
        prepared = prepare_quantizable(PilotNet(), qat=False, skeleton=True)
        with torch.inference_mode():
            prepared(torch.zeros(1, *INPUT_SHAPE))  # give the observers a range: no warnings, no NaN scales
        return convert_quantized(prepared)
    raise ValueError(f"unknown PyTorch INT8 method {method!r}; choose one of {', '.join(INT8_METHODS)}")


def _signature(value):
    """Shape/dtype/qscheme of a state_dict entry (tuples of packed params included)."""
    if isinstance(value, torch.Tensor):
        qscheme = str(value.qscheme()) if value.is_quantized else None
        axis = value.q_per_channel_axis() if qscheme and "per_channel" in qscheme else None
        return ("tensor", tuple(value.shape), str(value.dtype), qscheme, axis)
    if isinstance(value, (tuple, list)):
        return ("seq", tuple(_signature(v) for v in value))
    if value is None:
        return None
    return (type(value).__name__, str(value) if isinstance(value, torch.dtype) else None)


def _check_finite(path: Path, state: dict) -> None:
    def tensors(value):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (tuple, list)):
            for v in value:
                yield from tensors(v)

    for name, value in state.items():
        for t in tensors(value):
            t = t.dequantize() if t.is_quantized else t
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ModelFileError(f"{path}: tensor {name} holds NaN or inf")


def read_quantized_file(path: str | Path, method: str) -> tuple[dict, dict]:
    """(embedded metadata, state_dict) of a quantised PilotNet file written by a builder here; never
    unpickles code; ModelFileError for a missing, corrupt or foreign file. The metadata is read, and
    checked, by runtime/metadata.py; `quantized_from_state` builds the model."""
    path = Path(path)
    if method not in INT8_METHODS:
        raise ValueError(f"unknown PyTorch INT8 method {method!r}; choose one of {', '.join(INT8_METHODS)}")
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a torch.save archive (corrupt, truncated, or another format); "
            f"expected a {method} file written by `pilotnet-brain optimize`"
        )
    try:
        with quiet_torch_ao():
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            f"{path}: refused to load: the file holds objects other than tensors "
            f"(weights_only=True; nothing was executed): {first}"
        ) from None
    except Exception as error:  # corrupt zip members, bad storages...
        raise ModelFileError(f"{path}: cannot read torch file: {type(error).__name__}: {error}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a pilotnet_brain quantised model (format "
            f"{blob.get('format') if isinstance(blob, dict) else type(blob).__name__!r}, "
            f"expected {FORMAT!r})"
        )
    try:
        meta = json.loads(blob["metadata"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: corrupt metadata: {error}") from None
    state = blob.get("state_dict")
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: no state_dict in the file")
    return meta, state


def quantized_from_state(path: str | Path, method: str, state: dict) -> nn.Module:
    """The `method` architecture rebuilt from code with the file's `state` loaded (eval mode); ModelFileError
    naming `path` when the state is not that architecture's, or holds NaN or inf."""
    try:
        model = quantized_skeleton(method)
    except RuntimeError as error:
        raise ModelFileError(f"{path}: cannot build the {method} architecture here: {error}") from None
    details = state_dict_mismatch(
        model.state_dict(),
        state,
        lambda a, b: _signature(a) == _signature(b),
        lambda keys, got, want: f"wrong shape/dtype {keys}",
    )
    if details:
        raise ModelFileError(f"{path}: not a {method} PilotNet of this shape: {'; '.join(details)}")
    _check_finite(Path(path), state)
    try:
        with quiet_torch_ao():
            model.load_state_dict(state)
    except Exception as error:
        raise ModelFileError(f"{path}: cannot load the weights: {error}") from None
    return model.eval()
