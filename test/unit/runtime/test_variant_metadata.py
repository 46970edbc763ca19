"""One metadata schema for every variant: one writer (export/metadata.py), one reader (runtime/metadata.py).

Files written before the schema had a name (ONNX/TensorFlow `<file>.json` with source_model a file name;
PyTorch INT8 with its settings at the top level and its copy at `x.json`) must still load: the legacy
writers are reproduced here as they were.
"""

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.export import torch_variants
from pilotnet_brain.export.metadata import variant_metadata, write_variant_metadata
from pilotnet_brain.model.labels import LabelRanges
from pilotnet_brain.model.network import PilotNet
from pilotnet_brain.model.quantized import quiet_torch_ao
from pilotnet_brain.model.weights import read_metadata, save_model
from pilotnet_brain.runtime.metadata import (
    COPIED_KEYS,
    SCHEMA,
    legacy_metadata_path,
    load_variant_metadata,
    metadata_path,
    parse_variant_metadata,
    upgrade_legacy,
)
from pilotnet_brain.runtime.registry import make_backend

RANGES = LabelRanges(v_min=0.5, v_max=11.0, w_min=-2.5, w_max=2.0)  # not the defaults: they must travel


@pytest.fixture(scope="module")
def fp32_file(tmp_path_factory):
    torch.manual_seed(3)
    return save_model(PilotNet().eval(), tmp_path_factory.mktemp("fp32") / "pilotnet_fp32.safetensors", RANGES)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def legacy_onnx_tf_metadata(fp32_file, method, settings):
    """What export/onnx_variants.write_variant_metadata wrote before the schema (and tf_variants through it)."""
    fp32_meta = read_metadata(fp32_file)
    meta = {k: fp32_meta[k] for k in COPIED_KEYS if k in fp32_meta}
    meta.update(
        {
            "method": method,
            "settings": settings,
            "source_model": fp32_file.name,
            "source_sha256": sha256(fp32_file),
            "fp32_metadata": {k: v for k, v in fp32_meta.items() if k not in COPIED_KEYS},
        }
    )
    return meta


def legacy_torch_int8_metadata(fp32_file, method, **extra):
    """What export/torch_variants._derived_metadata wrote before the schema."""
    fp32_meta = read_metadata(fp32_file)
    meta = {k: fp32_meta[k] for k in COPIED_KEYS if k in fp32_meta}
    meta.update(
        {
            "method": method,
            "engine": "x86",
            "precision": "int8",
            "format": "torch.save state_dict (load with weights_only=True)",
            "source_model": {"file": fp32_file.name, "sha256": sha256(fp32_file)},
            "torch": torch.__version__,
            **extra,
        }
    )
    return meta


def test_what_the_writer_writes_the_reader_reads(fp32_file, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    settings = {"opset": 17, "input_layout": "NCHW"}
    side = write_variant_metadata(fp32_file, model, "onnx_int8", settings)
    assert side == tmp_path / "m.onnx.json" == metadata_path(model)
    written = json.loads(side.read_text())
    assert written["schema"] == SCHEMA and written["settings"] == settings
    assert (written["method"], written["precision"], written["file_kind"]) == ("onnx_int8", "int8", "onnx")
    assert written["source_model"] == {"file": fp32_file.name, "sha256": sha256(fp32_file)}
    assert written["fp32_metadata"] == {"format": "safetensors"}
    meta, ranges = load_variant_metadata(model, ("onnx_int8",))
    assert meta == written and ranges == RANGES


@pytest.mark.parametrize(
    "method, settings",
    [("onnx_int8", {"opset": 17, "calibration_frames": 24}), ("tflite_int8", {"input_layout": "s2d2-nhwc-(c,dy,dx)"})],
)
def test_onnx_and_tf_metadata_written_before_the_schema_reads_as_today(fp32_file, method, settings):
    legacy = legacy_onnx_tf_metadata(fp32_file, method, settings)
    assert upgrade_legacy(legacy) == variant_metadata(fp32_file, method, settings)


def test_torch_int8_metadata_written_before_the_schema_reads_as_today(fp32_file):
    extra = {"calibration_frames": 12, "weights": "int8 per-channel symmetric", "qat": {"epochs": 1}}
    legacy = legacy_torch_int8_metadata(fp32_file, "torch_int8_static", **extra)
    today = torch_variants._derived_metadata(fp32_file, "torch_int8_static", **extra)
    assert today["fp32_metadata"] == {"format": "safetensors"}
    # The old PyTorch writer kept none of the FP32 model's other metadata: nothing to recover.
    assert upgrade_legacy(legacy) == {**today, "fp32_metadata": {}}


def test_a_torch_int8_file_written_before_the_schema_still_loads(fp32_file, tmp_path):
    today = torch_variants.build_dynamic_int8(fp32_file, tmp_path / "today" / "pilotnet_int8_dynamic.pt")
    assert metadata_path(today).is_file() and not legacy_metadata_path(today).exists()
    with quiet_torch_ao():
        blob = torch.load(today, weights_only=True)
    legacy_meta = legacy_torch_int8_metadata(
        fp32_file, "torch_int8_dynamic", weights="int8 per-channel symmetric", calibration_frames=0
    )
    blob["metadata"] = json.dumps(legacy_meta)
    old = tmp_path / "old" / "pilotnet_int8_dynamic.pt"
    old.parent.mkdir()
    torch.save(blob, old)
    legacy_metadata_path(old).write_text(json.dumps(legacy_meta, indent=2))  # the copy, where it was written
    backend = make_backend("torch_int8_dynamic", old)
    assert backend.label_ranges == RANGES and backend.describe()["engine"] == "x86"
    assert backend.metadata["settings"]["calibration_frames"] == 0 and backend.metadata["schema"] == SCHEMA
    x = np.random.default_rng(0).random((3, 3, 66, 200), dtype=np.float32)
    assert np.array_equal(backend.predict(x), make_backend("torch_int8_dynamic", today).predict(x))
    # The legacy copy is still checked against the file.
    legacy_metadata_path(old).write_text(json.dumps({**legacy_meta, "label_ranges": {"v": [0, 1], "w": [-1, 1]}}))
    with pytest.raises(ModelFileError, match="does not match"):
        make_backend("torch_int8_dynamic", old)


def test_metadata_the_reader_refuses(fp32_file, tmp_path):
    good = variant_metadata(fp32_file, "onnx_fp32", {"opset": 17})
    cases = [
        ({**good, "schema": "pilotnet_brain.variant/2"}, ("onnx_fp32",), "schema 'pilotnet_brain.variant/2'"),
        ({**good, "settings": None}, ("onnx_fp32",), "settings None, expected an object"),
        ({**good, "architecture": "resnet"}, ("onnx_fp32",), "architecture 'resnet'"),
        ({**good, "input_shape": [3, 64, 64]}, ("onnx_fp32",), r"input shape \[3, 64, 64\]"),
        ({**good, "label_ranges": {"v": [1, 0], "w": [-1, 1]}}, ("onnx_fp32",), "increasing"),
        (good, ("onnx_int8",), "built by method 'onnx_fp32'; this backend runs onnx_int8: use backend 'onnx_fp32'"),
        ({**good, "method": "magic"}, ("onnx_int8",), r"built by method 'magic'; this backend runs onnx_int8$"),
        ([good], ("onnx_fp32",), "a JSON list, not an object"),
    ]
    for meta, methods, message in cases:
        with pytest.raises(ModelFileError, match=message):
            parse_variant_metadata(meta, "x.onnx.json", methods)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    metadata_path(model).write_text("{not json")
    with pytest.raises(ModelFileError, match="m.onnx.json: corrupt metadata"):
        load_variant_metadata(model, ("onnx_fp32",))
