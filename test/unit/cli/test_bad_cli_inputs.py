"""Every bad input to `pilotnet-brain`: one error line naming it, a non-zero exit, no traceback, nothing half-written.

One table (`CASES`) over every command's options, config files, model files, datasets and output
locations. To add a case, append `case(id, "command line", *fragments_of_the_error_line)`:
`{name}` in the command line is one of the files made by the `inputs` fixture (see BAD_FILES and
CONFIGS) or `{tmp}`, a fresh directory per case; `out="{tmp}/x"` names an output directory that must be
left without partial files; `full_disk=True` runs the command with every atomic write failing (ENOSPC).
"""

from __future__ import annotations

import errno
import shlex
from dataclasses import dataclass, field

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

from pilotnet_brain import jsonio
from pilotnet_brain.data.recording import write_png_atomic, write_sequence

#: Small timeouts keep every case that gets as far as driving short.
FAST = "--timeout 0.5 --latency-ms 2"


@dataclass(frozen=True)
class Case:
    id: str
    argv: str
    names: tuple = ()
    out: str | None = None
    full_disk: bool = False
    rc: tuple = field(default=(2,))


def case(id, argv, *names, out=None, full_disk=False, rc=(2,)):
    return Case(id, argv, tuple(names), out, full_disk, rc)


#: Config files (sim_node parameters) made in the `inputs` fixture: {placeholder: YAML text}.
def _sim_config(body: str) -> str:
    return "sim_node:\n  ros__parameters:\n" + "".join(f"    {line}\n" for line in body.splitlines())


CONFIGS = {
    "cfg_circuit_atlantis": _sim_config("circuit: atlantis"),
    "cfg_circuit_missing_csv": _sim_config("circuit: no_such_track.csv"),
    "cfg_direction": _sim_config("direction: diagonal"),
    "cfg_scale_negative": _sim_config("scale: -1.0"),
    "cfg_camera_rate_zero": _sim_config("camera_rate: 0.0"),
    "cfg_camera_rate_text": _sim_config("camera_rate: fast"),
    "cfg_latency_inf": _sim_config("latency: .inf"),
    "cfg_timeout_negative": _sim_config("timeout: -5.0"),
    "cfg_physics_dt_zero": _sim_config("physics_dt: 0.0"),
    "cfg_clock": _sim_config("clock: warp"),
    "cfg_unknown": _sim_config("gravity: 9.81"),
    "cfg_realtime": _sim_config("clock: realtime"),
    "cfg_list": "- circuit\n- montreal\n",
    "cfg_bad_yaml": "sim_node: [ros__parameters\n",
    "cfg_other_node": "brain_node:\n  ros__parameters:\n    brain: explicit\n",
    "cfg_no_parameters": "sim_node:\n  circuit: montreal\n",
}

CASES = [
    # --- no command / unknown command ---------------------------------------------------------------
    case("no-command", "", "command"),
    case("unknown-command", "fly", "fly"),
    # --- drive: numbers -------------------------------------------------------------------------------
    case("drive-timeout-negative", "drive --timeout -5", "--timeout", "-5", "out of range"),
    case("drive-timeout-nan", "drive --timeout nan", "--timeout", "nan", "not finite"),
    case("drive-timeout-inf", "drive --timeout inf", "--timeout", "inf"),
    case("drive-timeout-text", "drive --timeout soon", "--timeout", "soon"),
    case("drive-timeout-empty", "drive --timeout ''", "--timeout"),
    case("drive-camera-rate-zero", "drive --camera-rate 0", "--camera-rate", "out of range"),
    case("drive-camera-rate-negative", "drive --camera-rate -30", "--camera-rate", "-30"),
    case("drive-camera-rate-nan", "drive --camera-rate nan", "--camera-rate", "not finite"),
    case("drive-camera-rate-inf", "drive --camera-rate inf", "--camera-rate", "not finite"),
    case("drive-latency-nan", "drive --latency-ms nan", "--latency-ms", "not finite"),
    case("drive-latency-inf", "drive --latency-ms inf", "--latency-ms", "not finite"),
    case("drive-latency-minus-inf", "drive --latency-ms=-inf", "--latency-ms", "not finite"),
    case("drive-latency-text", "drive --latency-ms fast", "--latency-ms", "fast"),
    case("drive-scale-zero", "drive --scale 0", "--scale", "out of range"),
    case("drive-scale-negative", "drive --scale -2", "--scale", "-2"),
    case("drive-scale-nan", "drive --scale nan", "--scale", "not finite"),
    case("drive-threads-negative", "drive --threads -1", "--threads", "-1"),
    case("drive-threads-fraction", "drive --threads 1.5", "--threads", "1.5", "not an integer"),
    case("drive-threads-text", "drive --threads many", "--threads", "many"),
    # --- drive: lists and choices ----------------------------------------------------------------------
    case("drive-circuit-empty", "drive --circuit ''", "--circuit", "names nothing"),
    case("drive-circuit-commas", "drive --circuit ,,", "--circuit", "names nothing"),
    case("drive-circuit-unknown", "drive --circuit atlantis", "--circuit", "atlantis", "simple_circuit"),
    case("drive-circuit-one-unknown", "drive --circuit simple_circuit,atlantis", "--circuit", "atlantis"),
    case("drive-circuit-missing-csv", "drive --circuit no_such_track.csv", "--circuit", "no_such_track.csv"),
    case("drive-circuit-directory", "drive --circuit {tmp}", "--circuit", "unknown circuit"),
    case("drive-circuit-bad-csv", f"drive --circuit {{bad_csv}} {FAST}", "bad_track.csv"),
    case("drive-direction-empty", "drive --direction ''", "--direction", "names nothing"),
    case("drive-direction-unknown", "drive --direction diagonal", "--direction", "diagonal", "ccw"),
    case("drive-direction-one-unknown", "drive --direction ccw,up", "--direction", "'up'"),
    case("drive-brain-empty", "drive --brain ''", "--brain", "names nothing"),
    case("drive-brain-unknown", "drive --brain robot", "--brain", "robot", "explicit"),
    case("drive-brain-one-unknown", "drive --brain explicit,robot", "--brain", "robot"),
    case("drive-backend-unknown", "drive --brain pilotnet --backend abacus", "--backend", "abacus"),
    case("drive-device-unknown", "drive --brain pilotnet --device tpu", "--device", "tpu"),
    case("drive-clock-unknown", "drive --clock warp", "--clock", "warp"),
    case("drive-model-without-pilotnet", "drive --model {empty_model}", "--model", "pilotnet"),
    # --- drive: model files -----------------------------------------------------------------------------
    case("drive-model-missing", "drive --brain pilotnet --model {tmp}/none.safetensors", "--model", "none.safetensors"),
    case("drive-model-directory", "drive --brain pilotnet --model {tmp}", "--model", "not a file"),
    case("drive-model-empty", f"drive --brain pilotnet --model {{empty_model}} {FAST}", "empty.safetensors"),
    case("drive-model-corrupt", f"drive --brain pilotnet --model {{corrupt_model}} {FAST}", "corrupt.safetensors"),
    case("drive-model-foreign", f"drive --brain pilotnet --model {{foreign_model}} {FAST}", "foreign.safetensors"),
    case(
        "drive-model-text-onnx",
        f"drive --brain pilotnet --backend onnx_fp32 --model {{text_onnx}} {FAST}",
        "model.onnx",
    ),
    case(
        "drive-model-nan",
        f"drive --brain pilotnet --model {{nan_model}} {FAST} --quiet --out {{tmp}}/runs",
        "brain_error",
        "non-finite",
        "nan.safetensors",
        out="{tmp}/runs",
    ),
    case(
        "drive-model-nan-after-explicit",
        f"drive --brain explicit,pilotnet --model {{nan_model}} {FAST} --quiet",
        "pilotnet",
        "brain_error",
    ),
    # --- drive: config files ------------------------------------------------------------------------------
    case("drive-config-missing", "drive --config {tmp}/none.yaml", "--config", "none.yaml"),
    case("drive-config-directory", "drive --config {tmp}", "--config", "not a file"),
    case(
        "drive-config-circuit-unknown", "drive --config {cfg_circuit_atlantis}", "atlantis", "circuit", "simple_circuit"
    ),
    case("drive-config-circuit-missing-csv", "drive --config {cfg_circuit_missing_csv}", "no_such_track.csv"),
    case("drive-config-direction", "drive --config {cfg_direction}", "direction", "diagonal"),
    case("drive-config-scale", "drive --config {cfg_scale_negative}", "scale", "-1"),
    case("drive-config-camera-rate", "drive --config {cfg_camera_rate_zero}", "camera_rate", "out of range"),
    case("drive-config-camera-rate-text", "drive --config {cfg_camera_rate_text}", "camera_rate", "fast"),
    case("drive-config-latency-inf", "drive --config {cfg_latency_inf}", "latency"),
    case("drive-config-timeout", "drive --config {cfg_timeout_negative}", "timeout", "-5"),
    case("drive-config-physics-dt", "drive --config {cfg_physics_dt_zero}", "physics_dt"),
    case("drive-config-clock", "drive --config {cfg_clock}", "clock", "warp"),
    case("drive-config-unknown-parameter", "drive --config {cfg_unknown}", "gravity", "unknown parameter"),
    case("drive-config-list", "drive --config {cfg_list}", "cfg_list.yaml", "not a ROS 2 parameter file"),
    case("drive-config-bad-yaml", "drive --config {cfg_bad_yaml}", "cfg_bad_yaml.yaml"),
    case("drive-config-other-node", "drive --config {cfg_other_node}", "no section for sim_node"),
    case("drive-config-no-parameters", "drive --config {cfg_no_parameters}", "ros__parameters"),
    # --- drive: output locations -------------------------------------------------------------------------
    case("drive-out-is-file", "drive --out {a_file}", "--out", "not a directory"),
    case("drive-out-under-file", "drive --out {a_file}/runs", "--out", "is a file"),
    case("drive-out-empty", "drive --out ''", "--out", "empty path"),
    case(
        "drive-out-full-disk",
        f"drive {FAST} --quiet --out {{tmp}}/runs",
        "No space left",
        out="{tmp}/runs",
        full_disk=True,
    ),
    # --- record ------------------------------------------------------------------------------------------
    case("record-out-required", "record", "--out"),
    case("record-out-is-file", "record --out {a_file}", "--out", "not a directory"),
    case("record-out-under-file", "record --out {a_file}/data", "--out", "is a file"),
    case("record-laps-zero", "record --out {tmp}/d --laps 0", "--laps", "0", "out of range"),
    case("record-laps-negative", "record --out {tmp}/d --laps -1", "--laps", "-1"),
    case("record-laps-fraction", "record --out {tmp}/d --laps 1.5", "--laps", "not an integer"),
    case("record-frame-stride-zero", "record --out {tmp}/d --frame-stride 0", "--frame-stride"),
    case("record-frame-stride-negative", "record --out {tmp}/d --frame-stride -3", "--frame-stride", "-3"),
    case("record-seed-negative", "record --out {tmp}/d --seed -1", "--seed", "-1"),
    case("record-seed-text", "record --out {tmp}/d --seed abc", "--seed", "abc"),
    case("record-perturbation-negative", "record --out {tmp}/d --perturbation-rate -0.1", "--perturbation-rate"),
    case(
        "record-perturbation-nan", "record --out {tmp}/d --perturbation-rate nan", "--perturbation-rate", "not finite"
    ),
    case("record-lighting-negative", "record --out {tmp}/d --lighting-variation -0.2", "--lighting-variation"),
    case("record-lighting-one", "record --out {tmp}/d --lighting-variation 1", "--lighting-variation", "out of range"),
    case("record-lighting-nan", "record --out {tmp}/d --lighting-variation nan", "--lighting-variation"),
    case("record-circuits-empty", "record --out {tmp}/d --circuits ''", "--circuits", "names nothing"),
    case("record-circuits-unknown", "record --out {tmp}/d --circuits atlantis", "--circuits", "atlantis"),
    case("record-direction-empty", "record --out {tmp}/d --direction ''", "--direction"),
    case("record-driver-unknown", "record --out {tmp}/d --driver robot", "--driver", "robot"),
    case("record-model-without-driver", "record --out {tmp}/d --model {nan_model}", "--model", "--driver pilotnet"),
    case("record-model-missing", "record --out {tmp}/d --driver pilotnet --model {tmp}/no.safetensors", "--model"),
    case("record-timeout-negative", "record --out {tmp}/d --timeout -1", "--timeout"),
    case("record-camera-rate-zero", "record --out {tmp}/d --camera-rate 0", "--camera-rate"),
    case("record-config-circuit-unknown", "record --out {tmp}/d --config {cfg_circuit_atlantis}", "atlantis"),
    case("record-config-realtime", "record --out {tmp}/d --config {cfg_realtime}", "lockstep", out="{tmp}/d"),
    case(
        "record-timeout-shorter-than-lap",
        "record --out {tmp}/d --circuits simple_circuit --direction ccw --held-out --timeout 0.5",
        "timeout",
        "simple_circuit_ccw",
        "incomplete",
        out="{tmp}/d",
    ),
    case(
        "record-driver-nan",
        "record --out {tmp}/d --circuits simple_circuit --direction ccw --held-out --driver pilotnet --model {nan_model}",
        "non-finite",
        "nan.safetensors",
        out="{tmp}/d",
    ),
    case(
        "record-full-disk",
        "record --out {tmp}/d --circuits simple_circuit --direction ccw --held-out --timeout 0.5",
        "No space left",
        out="{tmp}/d",
        full_disk=True,
    ),
    # --- sim-benchmark, circuits -------------------------------------------------------------------------
    case("sim-benchmark-frames-zero", "sim-benchmark --frames 0", "--frames"),
    case("sim-benchmark-frames-text", "sim-benchmark --frames lots", "--frames", "lots"),
    case("sim-benchmark-circuit-unknown", "sim-benchmark --circuit atlantis", "--circuit", "atlantis"),
    case("circuits-set-unknown", "circuits --set validation", "--set", "validation"),
    # --- train (refused before torch is imported) --------------------------------------------------------
    case("train-data-required", "train --out {tmp}/m.safetensors", "--data"),
    case("train-data-missing", "train --data {tmp}/none --out {tmp}/m.safetensors", "--data", "none"),
    case("train-data-empty-list", "train --data '' --out {tmp}/m.safetensors", "--data", "names nothing"),
    case("train-data-is-file", "train --data {a_file} --out {tmp}/m.safetensors", "--data", "not a directory"),
    case("train-out-suffix", "train --data {dataset} --out {tmp}/m.pt", "--out", ".safetensors"),
    case("train-out-directory", "train --data {dataset} --out {tmp}", "--out", ".safetensors"),
    case("train-out-under-file", "train --data {dataset} --out {a_file}/m.safetensors", "--out", "is a file"),
    case("train-epochs-zero", "train --data {dataset} --out {tmp}/m.safetensors --epochs 0", "--epochs"),
    case("train-batch-size-zero", "train --data {dataset} --out {tmp}/m.safetensors --batch-size 0", "--batch-size"),
    case("train-lr-zero", "train --data {dataset} --out {tmp}/m.safetensors --lr 0", "--lr", "out of range"),
    case("train-lr-nan", "train --data {dataset} --out {tmp}/m.safetensors --lr nan", "--lr", "not finite"),
    case("train-seed-negative", "train --data {dataset} --out {tmp}/m.safetensors --seed -4", "--seed"),
    case(
        "train-val-fraction-zero", "train --data {dataset} --out {tmp}/m.safetensors --val-fraction 0", "--val-fraction"
    ),
    case(
        "train-val-fraction-one", "train --data {dataset} --out {tmp}/m.safetensors --val-fraction 1", "--val-fraction"
    ),
    case("train-threads-zero", "train --data {dataset} --out {tmp}/m.safetensors --threads 0", "--threads"),
    case(
        "train-samples-zero",
        "train --data {dataset} --out {tmp}/m.safetensors --samples-per-epoch 0",
        "--samples-per-epoch",
    ),
    case(
        "train-w-loss-negative",
        "train --data {dataset} --out {tmp}/m.safetensors --w-loss-weight -1",
        "--w-loss-weight",
    ),
    case("train-w-loss-inf", "train --data {dataset} --out {tmp}/m.safetensors --w-loss-weight inf", "--w-loss-weight"),
    # --- evaluate ------------------------------------------------------------------------------------------
    case("evaluate-data-required", "evaluate", "--data"),
    case("evaluate-data-missing", "evaluate --data {tmp}/none --out {tmp}/o", "--data", "no such directory"),
    case("evaluate-data-is-file", "evaluate --data {a_file} --out {tmp}/o", "--data", "not a directory"),
    case(
        "evaluate-data-no-sequences",
        "evaluate --data {empty_dir} --out {tmp}/o",
        "no recorded sequences",
        out="{tmp}/o",
    ),
    case(
        "evaluate-data-bad-columns", "evaluate --data {dataset_bad_columns} --out {tmp}/o", "data.csv", "missing column"
    ),
    case("evaluate-data-bad-number", "evaluate --data {dataset_bad_number} --out {tmp}/o", "data.csv", "'fast'"),
    case("evaluate-backend-unknown", "evaluate --data {dataset} --backend abacus", "--backend", "abacus"),
    case(
        "evaluate-model-missing", "evaluate --data {dataset} --model {tmp}/no.safetensors", "--model", "no.safetensors"
    ),
    case("evaluate-model-empty", "evaluate --data {dataset} --model {empty_model} --out {tmp}/o", "empty.safetensors"),
    case(
        "evaluate-model-corrupt",
        "evaluate --data {dataset} --model {corrupt_model} --out {tmp}/o",
        "corrupt.safetensors",
    ),
    case(
        "evaluate-model-foreign",
        "evaluate --data {dataset} --model {foreign_model} --out {tmp}/o",
        "foreign.safetensors",
    ),
    case(
        "evaluate-model-nan",
        "evaluate --data {dataset} --model {nan_model} --out {tmp}/o",
        "nan.safetensors",
        "NaN",
        out="{tmp}/o",
    ),
    case("evaluate-out-is-file", "evaluate --data {dataset} --out {a_file}", "--out", "not a directory"),
    case("evaluate-out-under-file", "evaluate --data {dataset} --out {a_file}/o", "--out", "is a file"),
    case(
        "evaluate-full-disk", "evaluate --data {dataset} --out {tmp}/o", "No space left", out="{tmp}/o", full_disk=True
    ),
    # --- optimize ------------------------------------------------------------------------------------------
    case("optimize-out-required", "optimize --data {dataset}", "--out"),
    case("optimize-out-is-file", "optimize --out {a_file}", "--out", "not a directory"),
    case("optimize-methods-empty", "optimize --out {tmp}/v --methods ''", "--methods", "names nothing"),
    case("optimize-methods-unknown", "optimize --out {tmp}/v --methods abacus", "--methods", "abacus"),
    case("optimize-calibration-zero", "optimize --out {tmp}/v --calibration-size 0", "--calibration-size"),
    case("optimize-seed-negative", "optimize --out {tmp}/v --seed -1", "--seed"),
    case("optimize-model-missing", "optimize --out {tmp}/v --model {tmp}/no.safetensors", "--model"),
    case("optimize-data-missing", "optimize --out {tmp}/v --data {tmp}/none", "--data"),
    # --- offline-benchmark, gpu-benchmark -------------------------------------------------------------------
    case("offline-benchmark-models-missing", "offline-benchmark --models {tmp}/none --data {dataset}", "--models"),
    case("offline-benchmark-data-missing", "offline-benchmark --models {tmp} --data {tmp}/none", "--data"),
    case(
        "offline-benchmark-methods-empty", "offline-benchmark --models {tmp} --data {dataset} --methods ,", "--methods"
    ),
    case(
        "offline-benchmark-repeats-zero", "offline-benchmark --models {tmp} --data {dataset} --repeats 0", "--repeats"
    ),
    case("offline-benchmark-out-is-file", "offline-benchmark --models {tmp} --data {dataset} --out {a_file}", "--out"),
    case("gpu-benchmark-repeats-zero", "gpu-benchmark --repeats 0", "--repeats"),
    case("gpu-benchmark-repeats-negative", "gpu-benchmark --repeats -10", "--repeats", "-10"),
    case("gpu-benchmark-model-missing", "gpu-benchmark --model {tmp}/no.safetensors", "--model"),
    case("gpu-benchmark-out-directory", "gpu-benchmark --out {tmp}", "--out", "is a directory"),
    case("gpu-benchmark-out-under-file", "gpu-benchmark --out {a_file}/rows.json", "--out", "is a file"),
    # --- launch, benchmark, graph-benchmark (refused before any ROS node starts) -----------------------------
    case("launch-what-unknown", "launch everything", "everything"),
    case("launch-timeout-negative", "launch simulation --timeout -5", "--timeout", "-5"),
    case("launch-timeout-nan", "launch simulation --timeout nan", "--timeout", "not finite"),
    case("launch-scale-zero", "launch simulation --scale 0", "--scale"),
    case("launch-circuit-unknown", "launch simulation --circuit atlantis", "--circuit", "atlantis"),
    case("launch-circuit-empty", "launch simulation --circuit ''", "--circuit"),
    case("launch-direction-unknown", "launch simulation --direction both", "--direction", "both"),
    case("launch-clock-unknown", "launch simulation --clock warp", "--clock", "warp"),
    case("launch-out-is-file", "launch simulation --out {a_file}", "--out", "not a directory"),
    case("benchmark-brains-empty", "benchmark --brains ''", "--brains", "names nothing"),
    case("benchmark-circuits-empty", "benchmark --circuits ''", "--circuits", "names nothing"),
    case("benchmark-circuits-unknown", "benchmark --circuits montreal,atlantis", "--circuits", "atlantis"),
    case("benchmark-directions-empty", "benchmark --directions ''", "--directions"),
    case("benchmark-timeout-negative", "benchmark --timeout -1", "--timeout"),
    case("benchmark-timeout-inf", "benchmark --timeout inf", "--timeout", "not finite"),
    case("benchmark-clock-unknown", "benchmark --clock warp", "--clock"),
    case("benchmark-out-under-file", "benchmark --out {a_file}/b", "--out", "is a file"),
    case("graph-benchmark-starts-zero", "graph-benchmark --starts 0", "--starts"),
    case("graph-benchmark-starts-text", "graph-benchmark --starts few", "--starts", "few"),
    case("graph-benchmark-sim-seconds-zero", "graph-benchmark --sim-seconds 0", "--sim-seconds"),
    case("graph-benchmark-sim-seconds-nan", "graph-benchmark --sim-seconds nan", "--sim-seconds", "not finite"),
    case("graph-benchmark-transports-empty", "graph-benchmark --transports ''", "--transports"),
    case("graph-benchmark-transports-unknown", "graph-benchmark --transports pigeon", "--transports", "pigeon"),
    case("graph-benchmark-brains-empty", "graph-benchmark --brains ,", "--brains"),
    case("graph-benchmark-out-directory", "graph-benchmark --out {tmp}", "--out", "is a directory"),
    # --- analyze, node-benchmark ----------------------------------------------------------------------------
    case("analyze-bags-required", "analyze", "bags"),
    case("analyze-bag-missing", "analyze {tmp}/no_bag", "no_bag", "no such directory"),
    case("analyze-bag-is-file", "analyze {a_file}", "not a directory"),
    case("analyze-out-is-file", "analyze {tmp} --out {a_file}", "--out", "not a directory"),
    case("node-benchmark-brain-empty", "node-benchmark --brain ''", "--brain"),
    case("node-benchmark-brain-unknown", "node-benchmark --brain robot", "--brain", "robot"),
    case("node-benchmark-frames-zero", "node-benchmark --frames 0", "--frames"),
]


def test_the_table_is_large_and_its_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


# --- the inputs the cases refer to ------------------------------------------------------------------
def _write_dataset(root, frames: int = 4, csv_text: str | None = None):
    """A tiny recorded dataset (the layout `record` writes): random frames, expert-like labels."""
    seq = root / "simple_circuit_ccw"
    rng = np.random.default_rng(0)
    rows = []
    for i in range(frames):
        name = f"images/{i:06d}.png"
        write_png_atomic(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), seq / name)
        rows.append((name, 8.0, 0.1 * i, 0.0, 0.0, 0.0, 0.0, round(i / 30, 4), 0))
    write_sequence(seq, rows)
    if csv_text is not None:
        (seq / "data.csv").write_text(csv_text)
    return root


def _nan_model(path):
    """A PilotNet file with finite weights whose outputs overflow to NaN (weights scaled by 1e30)."""
    torch = pytest.importorskip("torch")
    from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL
    from pilotnet_brain.model.weights import load_model, save_model

    model, _, ranges = load_model(SHIPPED_MODEL)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(1e30)
    return save_model(model, path, ranges)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("bad_inputs")
    files = {"a_file": root / "a_file.txt", "empty_dir": root / "empty_dir"}
    files["a_file"].write_text("not a directory\n")
    files["empty_dir"].mkdir()
    files["empty_model"] = root / "empty.safetensors"
    files["empty_model"].write_bytes(b"")
    files["corrupt_model"] = root / "corrupt.safetensors"
    files["corrupt_model"].write_bytes(np.random.default_rng(1).bytes(2000))
    files["foreign_model"] = root / "foreign.safetensors"
    save_file({"weight": np.zeros(3, np.float32)}, str(files["foreign_model"]))
    files["text_onnx"] = root / "model.onnx"
    files["text_onnx"].write_text("this is not ONNX\n")
    files["nan_model"] = _nan_model(root / "nan.safetensors")
    files["bad_csv"] = root / "bad_track.csv"
    files["bad_csv"].write_text("x_m,y_m\nnot,numbers\n")
    files["dataset"] = _write_dataset(root / "dataset")
    files["dataset_bad_columns"] = _write_dataset(root / "bad_columns", csv_text="image,v\nimages/000000.png,1\n")
    header = "image,v,w,x,y,yaw,lateral_offset_m,t,perturbed\n"
    files["dataset_bad_number"] = _write_dataset(
        root / "bad_number", csv_text=header + "images/000000.png,fast,0,0,0,0,0,0,0\n"
    )
    for name, text in CONFIGS.items():
        files[name] = root / f"{name}.yaml"
        files[name].write_text(text)
    return {name: str(path) for name, path in files.items()}


def _full_disk(monkeypatch):
    """Every atomic write fails half-way with ENOSPC, as on a full disk."""

    def write_half_then_fail(path, data):
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(jsonio, "_write_file", write_half_then_fail)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(bad: Case, inputs, tmp_path, capsys, monkeypatch):
    values = {**inputs, "tmp": str(tmp_path)}
    argv = [arg.format(**values) for arg in shlex.split(bad.argv)]
    out_dir = bad.out.format(**values) if bad.out else None
    if bad.full_disk:
        _full_disk(monkeypatch)
    rc, out, err = run_cli(argv, capsys)
    assert rc in bad.rc, f"exit code {rc}: {err[-800:]}"
    names = [name.format(**values) for name in bad.names]
    assert_clean_failure(rc, out, err, *names, out_dir=out_dir)
