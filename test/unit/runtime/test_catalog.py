"""The one table of backends (runtime/catalog.py): the registry, the brain presets, `pilotnet-brain presets`
and the Makefile's CPU_PRESETS all agree with it."""

import shutil
import subprocess

import pytest
import yaml
from conftest import REPO_ROOT

from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL, PilotNetBrain, default_model
from pilotnet_brain.cli.main import main
from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.runtime.base import Backend
from pilotnet_brain.runtime.catalog import (
    BACKEND_NAMES,
    BACKENDS,
    EXPLICIT_PRESET,
    TORCH_FILE_KINDS,
    backend_spec,
    preset_names,
)
from pilotnet_brain.runtime.registry import backend_class, make_backend

BRAIN_PRESETS_DIR = REPO_ROOT / "config" / "brains"


def brain_parameters(preset: str) -> dict:
    doc = yaml.safe_load((BRAIN_PRESETS_DIR / f"{preset}.yaml").read_text())
    return doc["brain_node"]["ros__parameters"]


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_backend_has_a_class_that_agrees_with_its_row(name):
    spec = BACKENDS[name]
    cls = backend_class(name)
    assert issubclass(cls, Backend)
    assert (cls.name, cls.precision) == (spec.name, spec.precision)
    assert getattr(cls, "methods", (name,)) == (name,)  # the variant files it accepts are its own method's


def test_unknown_backend_names_list_the_valid_ones(tmp_path):
    for call in (lambda: make_backend("tensorflow", tmp_path / "x"), lambda: backend_spec("tensorflow")):
        with pytest.raises(ValueError, match="unknown backend 'tensorflow'") as info:
            call()
        assert all(name in str(info.value) for name in BACKEND_NAMES)


def test_every_brain_preset_file_matches_the_table():
    """One preset per backend that has one, plus the explicit brain's; no file the table does not know."""
    files = sorted(p.stem for p in BRAIN_PRESETS_DIR.glob("*.yaml"))
    assert files == sorted(preset_names())
    assert len(set(preset_names())) == len(preset_names())
    assert brain_parameters(EXPLICIT_PRESET)["brain"] == "explicit"
    for spec in BACKENDS.values():
        if not spec.preset:
            continue
        params = brain_parameters(spec.preset)
        assert params["brain"] == "pilotnet", spec.preset
        assert params["backend"] == spec.name, spec.preset
        assert params["device"] == ("cuda" if spec.gpu else "cpu"), spec.preset
        if spec.runs_shipped_weights:
            assert params["model_path"] == "", spec.preset  # the shipped weights
        else:
            assert params["model_path"] == f"runs/optimized/{spec.filename}", spec.preset  # where optimize writes


def test_cpu_presets_leave_out_exactly_the_gpu_backends():
    gpu_presets = {s.preset for s in BACKENDS.values() if s.gpu}
    assert gpu_presets == {
        "pilotnet_torch_cuda_fp32",
        "pilotnet_torch_cuda_fp16",
        "pilotnet_tftrt_fp32",
        "pilotnet_tftrt_fp16",
        "pilotnet_tftrt_int8",
    }
    assert preset_names(cpu_only=True) == [p for p in preset_names() if p not in gpu_presets]
    assert preset_names(cpu_only=True)[:2] == [EXPLICIT_PRESET, "pilotnet_fp32"]


def test_presets_command_prints_the_form_benchmark_takes(capsys):
    assert main(["presets", "--cpu"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(preset_names(cpu_only=True))
    assert main(["presets"]) == 0
    assert capsys.readouterr().out.strip().split(",") == preset_names()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_the_makefile_benchmarks_the_cpu_presets():
    dry = subprocess.run(
        ["make", "-n", "-s", "benchmark-all"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert dry.returncode == 0, dry.stderr
    line = next(line for line in dry.stdout.splitlines() if "benchmark --brains" in line)
    assert line.split("--brains", 1)[1].split()[0] == ",".join(preset_names(cpu_only=True))


def test_torch_file_kinds_are_the_torch_backends():
    assert {s.name for s in BACKENDS.values() if s.file_kind in TORCH_FILE_KINDS} == {
        n for n in BACKEND_NAMES if n.startswith("torch_")
    }


def test_a_variant_backend_without_a_model_file_says_which_file(tmp_path):
    for name, spec in BACKENDS.items():
        if spec.runs_shipped_weights:
            assert default_model(name) == SHIPPED_MODEL
            continue
        with pytest.raises(ModelFileError, match=f"{spec.filename}.*--model") as info:
            PilotNetBrain(backend=name)
        assert name in str(info.value)
    with pytest.raises(ValueError, match="unknown backend 'onnx'"):
        PilotNetBrain(backend="onnx")
