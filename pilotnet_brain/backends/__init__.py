"""Backend registry: build a PilotNet inference backend from a name and a model file."""
from __future__ import annotations

from pathlib import Path

from .base import Backend, BackendUnavailable, check_batch

#: name -> (module, class). Imports are lazy so a missing optional runtime only affects its backends.
_REGISTRY = {
    "torch_fp32": ("torch_backend", "TorchFP32Backend"),
}

BACKEND_NAMES = tuple(_REGISTRY)


def make_backend(name: str, path: str | Path, **options) -> Backend:
    """Build backend `name` for the model file `path`; unknown names list the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    import importlib

    module_name, class_name = _REGISTRY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, class_name)(Path(path), **options)


__all__ = ["Backend", "BackendUnavailable", "BACKEND_NAMES", "make_backend", "check_batch"]
