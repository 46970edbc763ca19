"""Which optimisation method builds which file for which backend: derived from runtime/catalog.py.

The catalog names each builder as "module:function" in pilotnet_brain.export; only this module
resolves those names (the run-time side never imports build-time code).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pilotnet_brain.runtime.catalog import BACKENDS


@dataclass(frozen=True)
class Method:
    name: str  # also the backend name that runs the result
    module: str  # module in pilotnet_brain.export with the builder
    builder: str  # builder(fp32_model: Path, out_path: Path, data: OptimizeData) -> Path
    filename: str  # written inside the output directory
    needs: str = ""  # what the builder needs beyond torch, for the skip message


def _method(spec) -> Method:
    module, builder = spec.builder.split(":")
    return Method(spec.name, module, builder, spec.filename, spec.needs)


METHODS: dict[str, Method] = {name: _method(spec) for name, spec in BACKENDS.items()}


def builder_for(method: Method):
    module = importlib.import_module(f"pilotnet_brain.export.{method.module}")
    return getattr(module, method.builder)
