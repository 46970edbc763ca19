"""Backend registry: build a PilotNet inference backend from a name and a model file.

The names and the class of each come from the one table, runtime/catalog.py. Classes are imported on
first use, so a missing optional runtime (torch, onnxruntime, LiteRT, TensorFlow) affects only its own
backends.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.runtime.base import Backend, check_batch
from pilotnet_brain.runtime.catalog import BACKEND_NAMES, backend_spec


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass that runs backend `name` (imports its module); ValueError for unknown names."""
    module_name, class_name = backend_spec(name).runtime.split(":")
    module = importlib.import_module(f"pilotnet_brain.runtime.{module_name}")
    return getattr(module, class_name)


def make_backend(name: str, path: str | Path, **options) -> Backend:
    """Build backend `name` for the model file `path`; unknown names list the valid ones."""
    return backend_class(name)(Path(path), **options)


__all__ = ["Backend", "BackendUnavailable", "BACKEND_NAMES", "backend_class", "make_backend", "check_batch"]
