"""The one writer of variant metadata (schema and reader: runtime/metadata.py).

Every builder describes its output with `variant_metadata` and writes it beside the output as
`<file>.json` with `write_variant_metadata`; the PyTorch INT8 builders also embed the same object in
the file they save.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pilotnet_brain.model.weights import read_metadata
from pilotnet_brain.runtime.catalog import backend_spec
from pilotnet_brain.runtime.metadata import COPIED_KEYS, SCHEMA, metadata_path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def variant_metadata(fp32_model: str | Path, method: str, settings: dict) -> dict:
    """The metadata of a variant built by `method` from the FP32 model file (see runtime/metadata.py)."""
    fp32_model = Path(fp32_model)
    spec = backend_spec(method)
    fp32_meta = read_metadata(fp32_model)
    return {
        "schema": SCHEMA,
        "method": method,
        "precision": spec.precision,
        "file_kind": spec.file_kind,
        **{k: fp32_meta[k] for k in COPIED_KEYS if k in fp32_meta},
        "source_model": {"file": fp32_model.name, "sha256": _sha256(fp32_model)},
        "fp32_metadata": {k: v for k, v in fp32_meta.items() if k not in COPIED_KEYS},
        "settings": settings,
    }


def write_metadata_file(out_path: str | Path, meta: dict) -> Path:
    """Write `meta` as `<out_path>.json`; returns that path."""
    path = metadata_path(out_path)
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def write_variant_metadata(fp32_model: str | Path, out_path: str | Path, method: str, settings: dict) -> Path:
    """Describe the variant `out_path` built by `method` from `fp32_model`; write `<out_path>.json`."""
    return write_metadata_file(out_path, variant_metadata(fp32_model, method, settings))
