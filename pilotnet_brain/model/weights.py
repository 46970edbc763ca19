"""PilotNet weights files: safetensors (plain tensors, no pickled code) plus metadata.

The metadata (architecture, label ranges, input shape, training data, git revision) is stored in the
safetensors header, so it can never be separated from the weights; a `.json` copy is written beside
the file for people and tools that do not read safetensors headers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.model.architecture import ARCHITECTURE
from pilotnet_brain.model.labels import LabelRanges
from pilotnet_brain.model.network import PilotNet
from pilotnet_brain.model.preprocessing import INPUT_SHAPE

METADATA_KEY = "pilotnet_brain"


def metadata_path(weights_path: Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_model(model: PilotNet, path: str | Path, label_ranges: LabelRanges, extra: dict | None = None) -> Path:
    """Write `path` (.safetensors) and its `.json` metadata copy; returns the weights path."""

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelFileError(f"{path}: PilotNet weights are saved as .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "architecture": ARCHITECTURE,
        "input_shape": list(INPUT_SHAPE),
        "input_range": [0.0, 1.0],
        "outputs": ["v", "w"],
        "label_ranges": label_ranges.to_dict(),
        "format": "safetensors",
        **(extra or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    metadata_path(path).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata stored in a weights file's header (validates that the file is a PilotNet model)."""

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as error:  # safetensors raises its own SafetensorError / OSError types
        raise ModelFileError(f"{path} is not a readable safetensors model file: {error}") from None
    if METADATA_KEY not in header:
        raise ModelFileError(f"{path} is a safetensors file but not a pilotnet_brain model (no metadata)")
    try:
        meta = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: corrupt model metadata: {error}") from None
    if meta.get("architecture") != ARCHITECTURE:
        raise ModelFileError(f"{path}: architecture {meta.get('architecture')!r}, expected {ARCHITECTURE!r}")
    if list(meta.get("input_shape", [])) != list(INPUT_SHAPE):
        raise ModelFileError(f"{path}: input shape {meta.get('input_shape')}, expected {list(INPUT_SHAPE)}")
    return meta


def state_dict_mismatch(expected: dict, state: dict, same, describe_wrong) -> list[str]:
    """What keeps `state` from loading into a model whose state_dict is `expected` (empty if nothing).

    same(a, b) compares two tensors; describe_wrong(keys, state, expected) words the mismatching ones.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if not same(expected[k], state[k]))
    details = []
    if missing:
        details.append(f"missing {missing[:4]}")
    if unexpected:
        details.append(f"unexpected {unexpected[:4]}")
    if wrong:
        details.append(describe_wrong(wrong[:4], state, expected))
    return details


def load_model(path: str | Path) -> tuple[PilotNet, dict, LabelRanges]:
    """Load weights (no code execution) into a PilotNet in eval mode; clear errors for bad files."""

    path = Path(path)
    meta = read_metadata(path)
    try:
        ranges = LabelRanges.from_dict(meta.get("label_ranges", {}))
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    try:
        state = load_file(str(path))
    except Exception as error:
        raise ModelFileError(f"{path}: cannot read tensors: {error}") from None
    model = PilotNet()
    details = state_dict_mismatch(
        model.state_dict(),
        state,
        lambda a, b: a.shape == b.shape,
        lambda keys, got, want: (
            "wrong shape " + ", ".join(f"{k} {tuple(got[k].shape)} != {tuple(want[k].shape)}" for k in keys)
        ),
    )
    if details:
        raise ModelFileError(f"{path}: not a PilotNet of this shape: {'; '.join(details)}")
    model.load_state_dict(state)
    model.eval()
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name} holds NaN or inf")
    return model, meta, ranges
