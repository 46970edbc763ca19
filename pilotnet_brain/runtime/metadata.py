"""Read side of the metadata beside every optimised variant (`<file>.json`, written by export/)."""

from __future__ import annotations

import json
from pathlib import Path

from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.model.architecture import ARCHITECTURE
from pilotnet_brain.model.labels import LabelRanges
from pilotnet_brain.model.preprocessing import INPUT_SHAPE


def load_variant_metadata(path: Path, methods: tuple[str, ...]):
    """(metadata, LabelRanges) from `<path>.json`; ModelFileError for a missing/foreign/corrupt file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} not found")
    meta_path = path.with_name(path.name + ".json")
    if not meta_path.is_file():
        raise ModelFileError(
            f"{path}: metadata {meta_path.name} not found beside it (build variants with `pilotnet-brain optimize`)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{meta_path}: corrupt metadata: {error}") from None
    if not isinstance(meta, dict) or meta.get("architecture") != ARCHITECTURE:
        got = meta.get("architecture") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{meta_path}: architecture {got!r}, expected {ARCHITECTURE!r}")
    if list(meta.get("input_shape", [])) != list(INPUT_SHAPE):
        raise ModelFileError(f"{meta_path}: input shape {meta.get('input_shape')}, expected {list(INPUT_SHAPE)}")
    if meta.get("method") not in methods:
        raise ModelFileError(f"{path}: built by method {meta.get('method')!r}; this backend runs {', '.join(methods)}")
    try:
        ranges = LabelRanges.from_dict(meta.get("label_ranges", {}))
    except ValueError as error:
        raise ModelFileError(f"{meta_path}: {error}") from None
    return meta, ranges
