"""The metadata of every optimised variant: its schema and its one reader (the writer is export/metadata.py).

Schema SCHEMA, a JSON object beside the variant as `<file>.json` (`x.onnx` -> `x.onnx.json`, a
SavedModel directory `d` -> `d.json`; the PyTorch INT8 files also embed it):

    schema         SCHEMA
    method         the export method, which is also the backend that runs the file (runtime/catalog.py)
    precision      the backend's precision (catalog)
    file_kind      the backend's file kind (catalog)
    architecture, input_shape, input_range, outputs, label_ranges
                   copied from the FP32 model the variant was built from (COPIED_KEYS)
    source_model   {"file": name of that FP32 file, "sha256": its digest}
    fp32_metadata  the rest of the FP32 model's metadata (format, training, ...)
    settings       how the method built the file (opset, calibration, engine, input layout, ...)

Files written before the schema had a name still load: the ONNX/TensorFlow ones (`source_model` a file
name beside `source_sha256`) and the PyTorch INT8 ones (settings at the top level, the copy beside
`x.pt` at `x.json`) are read into the form above (`upgrade_legacy`).
"""

from __future__ import annotations

import json
from pathlib import Path

from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.model.architecture import ARCHITECTURE
from pilotnet_brain.model.labels import LabelRanges
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.runtime.catalog import BACKENDS

SCHEMA = "pilotnet_brain.variant/1"
#: The FP32 model's metadata every variant carries over.
COPIED_KEYS = ("architecture", "input_shape", "input_range", "outputs", "label_ranges")
#: Top-level keys of the schema besides COPIED_KEYS.
SCHEMA_KEYS = ("schema", "method", "precision", "file_kind", "source_model", "fp32_metadata", "settings")


def metadata_path(model_path: str | Path) -> Path:
    """`<file>.json` beside a variant (`x.onnx` -> `x.onnx.json`, a SavedModel dir `d` -> `d.json`)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def legacy_metadata_path(model_path: str | Path) -> Path:
    """Where PyTorch INT8 files written before SCHEMA kept their metadata copy (`x.pt` -> `x.json`)."""
    return Path(model_path).with_suffix(".json")


def upgrade_legacy(meta: dict) -> dict:
    """A metadata object written before SCHEMA, in SCHEMA's form (an object in SCHEMA is returned as is).

    ONNX/TensorFlow variants wrote source_model as a file name with source_sha256 beside it; PyTorch INT8
    variants wrote source_model as an object and their settings (engine, calibration_frames, qat, ...)
    at the top level."""
    if "schema" in meta:
        return meta
    upgraded = {k: meta[k] for k in COPIED_KEYS if k in meta}
    source = meta.get("source_model")
    if not isinstance(source, dict):
        source = {"file": source, "sha256": meta.get("source_sha256")}
    settings = dict(meta.get("settings") or {})
    legacy_keys = (*COPIED_KEYS, *SCHEMA_KEYS, "source_sha256")
    settings.update({k: v for k, v in meta.items() if k not in legacy_keys})
    upgraded.update(
        {
            "schema": SCHEMA,
            "method": meta.get("method"),
            "source_model": source,
            "fp32_metadata": meta.get("fp32_metadata", {}),
            "settings": settings,
        }
    )
    spec = BACKENDS.get(meta.get("method"))
    if spec is not None:
        upgraded.update(precision=spec.precision, file_kind=spec.file_kind)
    return upgraded


def read_metadata_file(meta_path: Path) -> dict:
    """The JSON object in `meta_path`; ModelFileError when it cannot be read or is not an object."""
    try:
        meta = json.loads(Path(meta_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{meta_path}: corrupt metadata: {error}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{meta_path}: corrupt metadata: a JSON {type(meta).__name__}, not an object")
    return meta


def parse_variant_metadata(meta, where: str | Path, methods: tuple[str, ...]) -> tuple[dict, LabelRanges]:
    """(metadata in SCHEMA's form, LabelRanges) of a variant run by one of `methods`; ModelFileError naming
    `where` for a foreign architecture or input shape, another method, bad label ranges or a newer schema."""
    if not isinstance(meta, dict):
        raise ModelFileError(f"{where}: corrupt metadata: a JSON {type(meta).__name__}, not an object")
    if meta.get("schema", SCHEMA) != SCHEMA:
        raise ModelFileError(f"{where}: metadata schema {meta.get('schema')!r}; this version reads {SCHEMA!r}")
    meta = upgrade_legacy(meta)
    if meta.get("architecture") != ARCHITECTURE:
        raise ModelFileError(f"{where}: architecture {meta.get('architecture')!r}, expected {ARCHITECTURE!r}")
    if list(meta.get("input_shape", [])) != list(INPUT_SHAPE):
        raise ModelFileError(f"{where}: input shape {meta.get('input_shape')}, expected {list(INPUT_SHAPE)}")
    method = meta.get("method")
    if method not in methods:
        hint = f": use backend {method!r} for it" if method in BACKENDS else ""
        raise ModelFileError(f"{where}: built by method {method!r}; this backend runs {', '.join(methods)}{hint}")
    if not isinstance(meta.get("settings"), dict):
        raise ModelFileError(f"{where}: settings {meta.get('settings')!r}, expected an object")
    try:
        ranges = LabelRanges.from_dict(meta.get("label_ranges", {}))
    except ValueError as error:
        raise ModelFileError(f"{where}: {error}") from None
    return meta, ranges


def load_variant_metadata(path: Path, methods: tuple[str, ...]) -> tuple[dict, LabelRanges]:
    """(metadata, LabelRanges) from `<path>.json`; ModelFileError for a missing/foreign/corrupt file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} not found")
    meta_path = metadata_path(path)
    if not meta_path.is_file():
        raise ModelFileError(
            f"{path}: metadata {meta_path.name} not found beside it (build variants with `pilotnet-brain optimize`)"
        )
    return parse_variant_metadata(read_metadata_file(meta_path), meta_path, methods)


def check_metadata_copy(path: Path, meta: dict) -> None:
    """For a file that embeds its metadata: the copy beside it, where there is one, must describe this file
    (catches mixed-up files); ModelFileError otherwise."""
    for side in (metadata_path(path), legacy_metadata_path(path)):
        if side.is_file():
            break
    else:
        return
    side_meta = upgrade_legacy(read_metadata_file(side))
    for key in ("method", "label_ranges"):
        if side_meta.get(key) != meta.get(key):
            raise ModelFileError(
                f"{side} does not match {Path(path).name} ({key}: {side_meta.get(key)!r} != "
                f"{meta.get(key)!r}); rebuild with `pilotnet-brain optimize`"
            )
