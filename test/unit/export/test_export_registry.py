"""`pilotnet-brain optimize`'s methods come from the one table of backends (runtime/catalog.py)."""

import pytest

from pilotnet_brain.export import build
from pilotnet_brain.export.registry import METHODS, builder_for
from pilotnet_brain.runtime.catalog import BACKEND_NAMES, BACKENDS


def test_one_method_per_backend_in_table_order():
    assert tuple(METHODS) == BACKEND_NAMES == build.DEFAULT_METHODS
    for name, method in METHODS.items():
        spec = BACKENDS[name]
        assert (method.name, method.filename, method.needs) == (spec.name, spec.filename, spec.needs)
        assert f"{method.module}:{method.builder}" == spec.builder


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_builder_resolves_to_a_function(name):
    pytest.importorskip("torch")  # the builder modules are build-time code: they import torch
    builder = builder_for(METHODS[name])
    assert callable(builder) and builder.__name__ == METHODS[name].builder


def test_methods_that_share_a_file_share_its_builder():
    """optimize builds a file once and reuses it for every method that runs it (the FP32 copy)."""
    by_file = {}
    for spec in BACKENDS.values():
        by_file.setdefault(spec.filename, set()).add(spec.builder)
    assert all(len(builders) == 1 for builders in by_file.values()), by_file


def test_unknown_methods_are_refused_with_the_list():
    with pytest.raises(ValueError, match="unknown method.*onnx_int4") as info:
        build.parse_methods("onnx_fp32,onnx_int4")
    assert all(name in str(info.value) for name in BACKEND_NAMES)
    assert [m.name for m in build.parse_methods(" onnx_int8 , tflite_int8")] == ["onnx_int8", "tflite_int8"]
