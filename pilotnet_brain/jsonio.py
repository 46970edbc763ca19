"""Strict JSON for every file the package writes: no NaN or infinity (other tools reject them), written atomically.

Metrics, bag side files and benchmark results hold floats that may be NaN (a run with no lap has no
lap time) and numpy scalars; :func:`clean_json` turns them into what strict JSON can hold, and
:func:`write_json_atomic` writes through a temporary file so a reader never sees half a file.
Every other result file (CSV, Markdown, PNG) goes through the same :func:`write_bytes_atomic`: the
bytes go to a temporary file beside the target, which then replaces it; on any failure (a full disk)
the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["clean_json", "dumps_strict", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def clean_json(value):
    """``value`` as plain JSON types: non-finite floats become None, numpy scalars and arrays numbers
    and lists, tuples lists, paths strings (recursively). Anything else JSON cannot hold raises TypeError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.ndarray):
        return clean_json(value.tolist())
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps_strict(value, indent: int | None = 2) -> str:
    """``clean_json(value)`` as JSON text (strict: ``allow_nan=False`` guards the cleaning)."""
    return json.dumps(clean_json(value), indent=indent, allow_nan=False)


def write_json_atomic(value, path, indent: int | None = 2) -> Path:
    """Write ``value`` as strict JSON (see :func:`dumps_strict`) plus a newline; create the parent
    directory; replace the file atomically. Returns the path."""
    return write_text_atomic(dumps_strict(value, indent) + "\n", path)


def write_text_atomic(text: str, path) -> Path:
    """Write ``text`` (UTF-8, newlines as given) through :func:`write_bytes_atomic`. Returns the path."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_bytes_atomic(data: bytes, path) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (creating the directory), then rename it over
    ``path``. On any failure the temporary file is removed and ``path`` keeps its old content. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_file(path: Path, data: bytes) -> None:
    # The one place bytes reach the disk (tests simulate a full disk here).
    with open(path, "wb") as f:
        f.write(data)
