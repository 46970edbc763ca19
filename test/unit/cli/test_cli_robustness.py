"""The mechanisms behind one-line failures: option types, output checks, atomic writes, config files honoured,
brain errors reported, partial recordings kept consistent (cli/common.py, jsonio, sim/clock, data/recording)."""

from __future__ import annotations

import argparse
import csv
import errno
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

from pilotnet_brain import jsonio
from pilotnet_brain.cli import common, main
from pilotnet_brain.config import BRAIN_NODE, SIM_NODE
from pilotnet_brain.data.recording import CSV_COLUMNS, write_png_atomic
from pilotnet_brain.errors import CircuitError, ConfigError
from pilotnet_brain.sim.builtin_circuits import TRAINING_CIRCUITS
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.clock import END_REASONS, end_reason
from pilotnet_brain.sim.world import SimConfig, World, run_episode

FAST = ["--timeout", "0.5", "--latency-ms", "2", "--quiet"]


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity, as strict readers do."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-strict JSON token {token}"))


# --- option types ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, value",
    [("1", 1), ("7", 7)],
)
def test_positive_int_accepts_positive_integers(text, value):
    assert common.positive_int(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "nan", "inf", "", "one"])
def test_positive_int_refuses_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError):
        common.positive_int(text)


def test_finite_float_bounds_inclusive_and_exclusive():
    between = common.finite_float(min=0.0, max=1.0, min_exclusive=True, max_exclusive=True)
    assert between("0.5") == 0.5
    for text in ("0", "1", "nan", "-inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            between(text)
    closed = common.finite_float(min=0.0, max=1.0)
    assert (closed("0"), closed("1")) == (0.0, 1.0)
    with pytest.raises(argparse.ArgumentTypeError, match=r"allowed: a float in \[0, 1\]"):
        closed("1.01")
    with pytest.raises(argparse.ArgumentTypeError, match="not finite"):
        common.finite_float()("nan")


#: Every numeric node parameter an option sets, with texts around its bounds.
PARAMETER_OPTIONS = [SIM_NODE[name] for name in ("camera_rate", "timeout", "latency", "scale")] + [
    BRAIN_NODE["threads"]
]
PROBES = ["-1", "-0.001", "0", "0.001", "1", "30", "1e9", "nan", "inf", "-inf"]


def as_written_in_a_file(text: str):
    """The number a parameter file holding `text` gives: an int for an integer literal, else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


@pytest.mark.parametrize("parameter", PARAMETER_OPTIONS, ids=lambda p: p.name)
def test_parameter_options_accept_exactly_what_the_config_files_accept(parameter):
    option = common.parameter_type(parameter)
    for text in PROBES:
        try:
            parameter.check(as_written_in_a_file(text))
            in_a_file = True
        except ConfigError:
            in_a_file = False
        try:
            option(text)
            on_the_command_line = True
        except argparse.ArgumentTypeError:
            on_the_command_line = False
        assert on_the_command_line == in_a_file, (parameter.name, text)


def test_parameter_type_scales_the_unit_and_names_the_parameter():
    latency_ms = common.parameter_type(SIM_NODE["latency"], scale=1e-3)
    assert latency_ms("2") == 2.0  # returned in the option's own unit
    with pytest.raises(argparse.ArgumentTypeError, match=r"^latency=nan is not finite"):
        latency_ms("nan")


def test_lists_names_and_directions():
    assert common.non_empty_list(" a, b ,") == ["a", "b"]
    with pytest.raises(argparse.ArgumentTypeError, match="names nothing"):
        common.non_empty_list(" , ")
    brains = common.choice_list(("explicit", "pilotnet"), "brain(s)")
    assert brains("pilotnet,explicit") == ["pilotnet", "explicit"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown brain\\(s\\) 'x'; choose from explicit, pilotnet"):
        brains("explicit,x")
    assert common.directions("both") == ["ccw", "cw"] and common.directions("cw") == ["cw"]


def test_circuits_are_built_in_names_or_existing_track_files(tmp_path):
    track = tmp_path / "t.csv"
    track.write_text("0,0,1,1\n")
    assert common.check_circuit("montreal") == "montreal" and common.check_circuit(str(track)) == str(track)
    with pytest.raises(CircuitError, match="unknown circuit 'atlantis': valid names are simple_circuit"):
        common.check_circuit("atlantis")
    with pytest.raises(CircuitError, match="not found"):
        common.check_circuit(str(tmp_path / "missing.csv"))
    assert common.circuit_list("montreal, simple_circuit") == ["montreal", "simple_circuit"]


def test_existing_paths(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    assert common.existing_file(str(f)) == str(f) and common.existing_dir(str(tmp_path)) == str(tmp_path)
    for check, path in ((common.existing_file, tmp_path), (common.existing_dir, f), (common.existing_file, "")):
        with pytest.raises(argparse.ArgumentTypeError):
            check(str(path))


def test_output_locations_are_checked_before_any_work(tmp_path, monkeypatch):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    problem = common.output_location_problem
    assert problem(tmp_path / "new" / "deeper", directory=True) is None  # created later, nothing made now
    assert not (tmp_path / "new").exists()
    assert problem(tmp_path / "rows.json", directory=False) is None
    assert problem(a_file, directory=True) == "exists and is not a directory"
    assert problem(tmp_path, directory=False) == "is a directory, not a file"
    assert problem(a_file / "sub" / "x", directory=True) == f"{a_file} is a file, not a directory"
    assert problem("", directory=True) == "empty path"

    def read_only(*args, **kwargs):  # tests run as root: simulate a read-only directory
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert problem(tmp_path / "out", directory=True) == f"cannot write in {tmp_path}: Permission denied"


def test_one_line_parser_errors_have_no_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main.build_parser().parse_args(["drive", "--timeout", "-5"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "pilotnet-brain drive: error: argument --timeout: timeout=-5.0 is out of range (allowed: a float >= 0)"
    ]


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    def bug(args):
        raise KeyError("a bug")

    monkeypatch.setattr("pilotnet_brain.cli.simulation.cmd_presets", bug)
    with pytest.raises(KeyError):
        main.main(["presets"])


# --- atomic writes --------------------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_and_no_temporary_on_failure(tmp_path, monkeypatch):
    target = jsonio.write_text_atomic("old\n", tmp_path / "table.md")

    def half_then_full_disk(path, data):
        path.write_bytes(data[:3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonio, "_write_file", half_then_full_disk)
    with pytest.raises(OSError):
        jsonio.write_json_atomic({"a": 1}, target)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_png_frames_are_the_bytes_cv2_imwrite_gives(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    write_png_atomic(frame, tmp_path / "a.png")
    cv2.imwrite(str(tmp_path / "b.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


# --- config files: honoured or refused -----------------------------------------------------------------
def sim_args(config=None, **options):
    values = dict(config=config, clock=None, camera_rate=None, timeout=None, latency_ms=None, condition=None)
    return SimpleNamespace(**{**values, **options})


def write_config(path: Path, **params) -> str:
    body = "".join(f"    {k}: {v}\n" for k, v in params.items())
    path.write_text(f"sim_node:\n  ros__parameters:\n{body}")
    return str(path)


def test_a_config_files_circuit_direction_and_scale_are_used_unless_options_are_given(tmp_path):
    cfg = write_config(tmp_path / "sim.yaml", circuit="montreal", direction="cw", scale=2.0, camera_rate=15.0)
    s = common.sim_settings_from_args(sim_args(cfg), None, None, None, ["simple_circuit"], ["ccw"])
    assert (s.circuits, s.directions, s.scale, s.config.camera_rate_hz) == (["montreal"], ["cw"], 2.0, 15.0)
    s = common.sim_settings_from_args(sim_args(cfg), ["simple_circuit"], ["ccw"], 1.0, ["x"], ["ccw"])
    assert (s.circuits, s.directions, s.scale) == (["simple_circuit"], ["ccw"], 1.0)  # the command line wins


def test_without_a_config_file_each_command_keeps_its_defaults():
    s = common.sim_settings_from_args(sim_args(), None, None, None, TRAINING_CIRCUITS, ("ccw", "cw"))
    assert (s.circuits, s.directions, s.scale) == (list(TRAINING_CIRCUITS), ["ccw", "cw"], 1.0)


def test_drive_drives_the_circuit_and_direction_its_config_file_asks_for(tmp_path, capsys):
    cfg = write_config(tmp_path / "sim.yaml", circuit="montreal", direction="cw")
    rc, out, err = run_cli(["drive", "--config", cfg, *FAST, "--json"], capsys)
    metrics = strict_json(out)
    assert (metrics["circuit"], metrics["direction"], metrics["end_reason"]) == ("montreal", "cw", "timeout"), err
    assert rc == 1  # a timed-out run did not complete the lap
    rc, out, _ = run_cli(["drive", "--config", cfg, "--circuit", "simple_circuit", *FAST, "--json"], capsys)
    assert strict_json(out)["circuit"] == "simple_circuit" and strict_json(out)["direction"] == "cw"


# --- brain errors and non-finite results ---------------------------------------------------------------
def test_a_brain_error_ends_the_episode_before_anything_else():
    world = World(load_circuit("simple_circuit"), SimConfig())
    assert "brain_error" in END_REASONS
    assert end_reason(world, 0.0, brain_error="model gave NaN") == "brain_error"
    assert end_reason(world, 0.0) == "timeout"


class FailingBrain:
    """Answers stop and reports an error from its third frame on (as PilotNetBrain does on NaN output)."""

    name = "failing"

    def reset(self):
        self.frames, self.last_error = 0, None

    def step(self, image, t):
        from pilotnet_brain.control import STOP, BrainOutput

        self.frames += 1
        if self.frames >= 3:
            self.last_error = "model gave a non-finite output"
        return BrainOutput(STOP, 0.0)


@pytest.mark.parametrize("clock", ["lockstep", "realtime"])
def test_the_episode_reports_the_brains_error(clock):
    log = run_episode(World(load_circuit("simple_circuit"), SimConfig(clock=clock, timeout_s=5.0)), FailingBrain())
    assert log.record.end_reason == "brain_error"
    assert log.brain_error.startswith("model gave a non-finite output (at t=")
    assert log.record.t[-1] < 1.0


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    from test_bad_cli_inputs import _nan_model

    return _nan_model(tmp_path_factory.mktemp("nan") / "nan.safetensors")


def test_drive_with_a_nan_model_says_why_and_writes_strict_json(nan_model, tmp_path, capsys):
    out_dir = tmp_path / "runs"
    argv = ["drive", "--brain", "pilotnet", "--model", nan_model, *FAST, "--out", out_dir]
    rc, out, err = run_cli([*argv, "--json"], capsys)
    assert_clean_failure(rc, out, err, "brain_error", "non-finite", out_dir=out_dir)
    printed = strict_json(out)
    (run_json,) = out_dir.glob("simple_circuit_ccw_*.json")
    written = strict_json(run_json.read_text())
    for metrics in (printed, written):
        assert metrics["end_reason"] == "brain_error" and "non-finite" in metrics["brain_error"]
    assert (out_dir / "summary.csv").is_file() and (out_dir / "summary.png").is_file()


def test_evaluate_refuses_a_nan_model_and_writes_nothing(nan_model, tmp_path, capsys):
    from test_bad_cli_inputs import _write_dataset

    data = _write_dataset(tmp_path / "data")
    rc, out, err = run_cli(["evaluate", "--model", nan_model, "--data", data, "--out", tmp_path / "o"], capsys)
    assert_clean_failure(rc, out, err, "NaN", "nan.safetensors")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_drive_writes_each_runs_result_as_it_finishes(tmp_path, capsys, monkeypatch):
    from pilotnet_brain.cli import simulation

    seen = []

    def drive_and_look(*args, **kwargs):
        seen.append(sorted(p.name for p in (tmp_path / "runs").glob("*.json")))
        return real_drive(*args, **kwargs)

    real_drive = simulation.drive
    monkeypatch.setattr(simulation, "drive", drive_and_look)
    rc, _, err = run_cli(["drive", "--circuit", "simple_circuit,montreal", *FAST, "--out", tmp_path / "runs"], capsys)
    assert rc == 1, err  # timed out: no lap completed
    assert seen == [[], ["simple_circuit_ccw_explicit.json"]]


# --- recordings ----------------------------------------------------------------------------------------
def read_dataset(out_dir: Path):
    info = strict_json((out_dir / "dataset.json").read_text())
    seq = out_dir / "simple_circuit_ccw"
    with open(seq / "data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return info, seq, rows


def test_a_recording_cut_short_is_kept_consistent_and_marked_incomplete(tmp_path, capsys):
    out_dir = tmp_path / "data"
    argv = ["record", "--out", out_dir, "--circuits", "simple_circuit", "--direction", "ccw", "--timeout", "0.5"]
    argv.append("--held-out")  # simple_circuit is a test circuit: recorded as test data only
    rc, out, err = run_cli(argv, capsys)
    assert_clean_failure(rc, out, err, "timeout", "incomplete", out_dir=out_dir)
    info, seq, rows = read_dataset(out_dir)
    assert info["complete"] is False and "timeout" in info["incomplete_reason"]
    assert info["frames"] == len(rows) == len(list((seq / "images").glob("*.png"))) > 0
    assert list(rows[0]) == list(CSV_COLUMNS) and all((seq / r["image"]).is_file() for r in rows)


def test_a_complete_recording_says_so(tmp_path, capsys):
    out_dir = tmp_path / "data"
    argv = ["record", "--out", out_dir, "--circuits", "simple_circuit", "--direction", "ccw", "--frame-stride", "60"]
    argv.append("--held-out")  # simple_circuit is a test circuit: recorded as test data only
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    info, seq, rows = read_dataset(out_dir)
    assert info["complete"] is True and "incomplete_reason" not in info
    assert info["sequences"][0]["lap_end_reasons"] == ["lap_completed"]
    assert info["frames"] == len(rows) == len(list((seq / "images").glob("*.png")))
