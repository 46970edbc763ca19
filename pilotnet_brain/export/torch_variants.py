"""PyTorch variants of PilotNet: FP32 copy, INT8 dynamic, INT8 static (PTQ) and INT8 QAT.

Which quantisation API, and why (the choice lives in this module only)
---------------------------------------------------------------------
We use **eager-mode `torch.ao.quantization`** with the **`x86` quantized engine**. In torch 2.13 it
still works but warns that it is deprecated in favour of torchao. We keep it deliberately:

- it is part of the pinned torch wheel: no extra dependency (torchao is not installed here);
- its converted modules call the fused x86 INT8 kernels (fbgemm / oneDNN: `quantized::conv2d_relu`,
  `quantized::linear_relu`) directly in eager mode: PilotNet batch-1 inference runs ~2.4x faster
  than FP32 eager on one thread (measured: ~0.55 ms against ~1.3 ms). torchao's PT2E flow produces
  a graph of quantize/dequantize + float ops that is only fast after `torch.compile` (inductor),
  which needs a C++ toolchain and a long compile at load time on the robot, and is slower without;
- a converted eager model is rebuilt from code and its state_dict is plain tensors
  (quantized tensors, dtypes, tuples): it saves with `torch.save` and loads with
  `torch.load(weights_only=True)`, so no pickled code is ever run.

Every call into torch.ao goes through `quiet_torch_ao()`, which silences its deprecation warnings for
that call only (nothing global). When torch removes torch.ao.quantization, this module is the one
place to port.

Input BatchNorm: folded into the first convolution
---------------------------------------------------
PilotNet normalises its input with a BatchNorm (a per-channel affine map in eval mode). The first
convolution has no padding, so `conv(a*x + b) == conv'(x)` with `w' = w*a` and
`bias' = bias + sum(w*b)`, exactly (up to float rounding). Folding it means the INT8 graph starts at
the raw [0, 1] pixels: the QuantStub uses a fixed, data-independent input scale (1/127, the x86
engine's reduced activation range) instead of a calibrated one, and there is no float BatchNorm
with a dequantize/quantize pair around it (extra time and extra rounding). For QAT the folded,
frozen input normalisation also means there is no BatchNorm left to freeze (PilotNet has no other
BatchNorm), so "BN freezing" is a no-op by construction; observers are frozen for the last epoch.

Files
-----
`<name>.pt` holds `{"format": FORMAT, "metadata": json string, "state_dict": ...}` written by
`torch.save`; `<name>.pt.json` beside it is a copy of the metadata, in the schema every variant uses
(runtime/metadata.py: label ranges, architecture, input shape copied from the FP32 model; settings:
engine, calibration size, QAT settings). Loading (runtime/torch_int8.py with model/quantized.py)
checks the metadata, rebuilds the same quantised architecture from code, checks every key, shape and
dtype, then `load_state_dict`s; anything else is a `ModelFileError`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pilotnet_brain.data.calibration import OptimizeData
from pilotnet_brain.export.metadata import variant_metadata, write_metadata_file
from pilotnet_brain.model.labels import LabelRanges
from pilotnet_brain.model.preprocessing import INPUT_SHAPE, to_network_input
from pilotnet_brain.model.quantized import (
    ENGINE,
    FLOAT_LAYERS,
    FORMAT,
    convert_quantized,
    dynamic_quantize,
    prepare_quantizable,
    quiet_torch_ao,
    torch_ao,
)
from pilotnet_brain.model.weights import load_model, metadata_path, read_metadata


# --- files -----------------------------------------------------------------------------------------
def _derived_metadata(fp32_model: Path, method: str, **settings) -> dict:
    """The variant metadata (export/metadata.py) of a PyTorch INT8 file; `settings` describe the method."""
    return variant_metadata(
        fp32_model,
        method,
        {
            "engine": ENGINE,
            "format": "torch.save state_dict (load with weights_only=True)",
            "torch": torch.__version__,
            **settings,
        },
    )


def save_quantized(model: nn.Module, out_path: Path, meta: dict) -> Path:
    """torch.save the state_dict with `meta` embedded, and the same metadata beside it as `<file>.json`."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "metadata": json.dumps(meta), "state_dict": model.state_dict()}
    tmp = out_path.with_name(out_path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out_path)
    write_metadata_file(out_path, meta)
    return out_path


# --- builders (see registry.py) --------------------------------------------------------------------
def build_fp32_copy(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    """Copy the FP32 safetensors (and its .json) into the output directory."""
    fp32_model, out_path = Path(fp32_model), Path(out_path)
    meta = read_metadata(fp32_model)  # validates: a foreign file is never copied as a model
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if fp32_model.resolve() != out_path.resolve():
        shutil.copyfile(fp32_model, out_path)
    side = metadata_path(fp32_model)
    if side.is_file():
        if side.resolve() != metadata_path(out_path).resolve():
            shutil.copyfile(side, metadata_path(out_path))
    else:
        metadata_path(out_path).write_text(json.dumps(meta, indent=2) + "\n")
    return out_path


def build_dynamic_int8(fp32_model: Path, out_path: Path, data: OptimizeData | None = None) -> Path:
    """Dynamic-range INT8: Linear weights int8 per channel, activations quantised on the fly."""
    model, _, _ = load_model(fp32_model)
    quantized = dynamic_quantize(model)
    meta = _derived_metadata(
        fp32_model,
        "torch_int8_dynamic",
        weights="int8 per-channel symmetric",
        quantized_layers="Linear (convolutions and input BatchNorm stay FP32)",
        calibration_frames=0,
    )
    return save_quantized(quantized, out_path, meta)


def _calibrate(prepared: nn.Module, images: np.ndarray, batch_size: int = 32) -> int:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or tuple(images.shape[1:]) != INPUT_SHAPE or len(images) == 0:
        raise ValueError(
            f"calibration data must be (N, {', '.join(map(str, INPUT_SHAPE))}) float32, got {images.shape}"
        )
    prepared.eval()
    with torch.inference_mode(), quiet_torch_ao():
        for start in range(0, len(images), batch_size):
            prepared(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])))
    return len(images)


def build_static_int8(fp32_model: Path, out_path: Path, data: OptimizeData) -> Path:
    """Post-training static INT8 (x86, per-channel weights, fused conv/linear+ReLU, calibrated)."""
    if data is None or data.calibration is None or len(data.calibration) == 0:
        raise ValueError("static INT8 needs calibration frames (OptimizeData.calibration)")
    model, _, _ = load_model(fp32_model)
    prepared = prepare_quantizable(model, qat=False)
    n = _calibrate(prepared, data.calibration)
    quantized = convert_quantized(prepared)
    meta = _derived_metadata(
        fp32_model,
        "torch_int8_static",
        calibration_frames=n,
        observers="activations: histogram (x86 default); input: fixed scale 1/127",
        weights="int8 per-channel symmetric",
        fused="conv+ReLU, linear+ReLU",
        float_layers=FLOAT_LAYERS,
        input_norm="folded into features.0",
    )
    return save_quantized(quantized, out_path, meta)


def _flip_labels(y: torch.Tensor, flip: torch.Tensor, ranges: LabelRanges) -> None:
    """Mirror the turn of the flipped rows in place (as pilotnet/train.py does)."""
    w_phys = y[flip, 1] * float(ranges.span[1]) + ranges.w_min
    y[flip, 1] = (-w_phys - ranges.w_min) / float(ranges.span[1])


def build_qat_int8(
    fp32_model: Path,
    out_path: Path,
    data: OptimizeData,
    *,
    epochs: int = 2,
    samples_per_epoch: int = 2048,
    batch_size: int = 32,
    learning_rate: float = 5e-6,
    augment: bool = False,
    show_progress: bool = False,
) -> Path:
    """Quantisation-aware fine-tuning from the FP32 weights on data.train, then INT8 conversion.

    Same training pieces as pilotnet/train.py (normalised labels, |w|-balanced sampling, mirror flips,
    Augmenter); Adam with cosine decay at a small learning rate; the fake-quant observers are frozen
    for the last epoch (so the final weights are tuned to the scales they will be converted with).
    Defaults: 2 epochs x 2048 samples: ~2.7 minutes on a busy 2-core machine.
    Defaults lr 5e-6, no augmentation (measured with the FP32 regressor tail, test MSE vs FP32:
    lr 2e-5 + Augmenter 1.07/1.07/1.07x, lr 5e-6 without 0.97/1.05/1.02x on simple_circuit/montreal/montmelo).
    """
    from pilotnet_brain.train.trainer import Augmenter, turn_weights  # noqa: PLC0415  (optional: torch)

    if data is None or data.train is None or len(data.train) == 0:
        raise ValueError("QAT INT8 needs training frames (OptimizeData.train)")
    if epochs < 1 or samples_per_epoch < 1:
        raise ValueError("QAT needs epochs >= 1 and samples_per_epoch >= 1")
    tq = torch_ao()
    frames = data.train
    model, _, ranges = load_model(fp32_model)
    torch.manual_seed(data.seed)
    g = torch.Generator().manual_seed(data.seed)
    rng = np.random.default_rng(data.seed)
    targets = ranges.normalize(frames.labels)
    weights = turn_weights(frames.labels[:, 1]) if len(frames) > 1 else np.ones(len(frames))
    p = weights / weights.sum()

    qat = prepare_quantizable(model, qat=True)
    params = [prm for prm in qat.parameters() if prm.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    steps_per_epoch = math.ceil(samples_per_epoch / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    augmenter = Augmenter(g) if augment else None
    history = []
    t0 = time.perf_counter()
    with quiet_torch_ao():
        for epoch in range(1, epochs + 1):
            qat.train()
            if epoch == epochs and epochs > 1:
                qat.apply(tq.disable_observer)  # freeze the quantisation ranges for the last epoch
            order = rng.choice(len(frames), size=samples_per_epoch, replace=True, p=p)
            running = 0.0
            for start in range(0, samples_per_epoch, batch_size):
                idx = order[start : start + batch_size]
                x = torch.from_numpy(to_network_input(frames.images[idx]))
                y = torch.from_numpy(targets[idx].copy())
                flip = torch.rand(len(idx), generator=g) < 0.5
                x[flip] = torch.flip(x[flip], dims=[3])
                _flip_labels(y, flip, ranges)
                if augmenter is not None:
                    x = augmenter(x)
                optimizer.zero_grad(set_to_none=True)
                loss = F.mse_loss(qat(x), y)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running += float(loss.detach()) * len(idx)
            history.append(running / samples_per_epoch)
            if show_progress:
                print(
                    f"QAT epoch {epoch}/{epochs}: train mse {history[-1]:.5f} ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    quantized = convert_quantized(qat)
    meta = _derived_metadata(
        fp32_model,
        "torch_int8_qat",
        weights="int8 per-channel symmetric",
        fused="conv+ReLU, linear+ReLU",
        float_layers=FLOAT_LAYERS,
        input_norm="folded into features.0",
        calibration_frames=0,
        qat={
            "epochs": epochs,
            "samples_per_epoch": samples_per_epoch,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "augment": augment,
            "observers_frozen_last_epoch": epochs > 1,
            "train_frames": len(frames),
            "train_mse": history,
            "seconds": round(time.perf_counter() - t0, 1),
            "seed": data.seed,
        },
    )
    return save_quantized(quantized, out_path, meta)
