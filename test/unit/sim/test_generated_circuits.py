"""Generated circuits (pilotnet_brain.sim.generated): a seed gives one valid circuit, always the same; the
training/evaluation split of the seeds holds everywhere a circuit is recorded or trained on."""

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_TRACKS, assert_clean_failure, run_cli

from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.cli.common import check_circuit
from pilotnet_brain.data.frames import check_trainable
from pilotnet_brain.errors import CircuitError
from pilotnet_brain.evaluation.drive import drive
from pilotnet_brain.sim.builtin_circuits import (
    BUILTIN_HALF_WIDTH_M,
    CIRCUIT_SETS,
    EVALUATION_SEEDS,
    GENERATED_EVALUATION,
    GENERATED_TRAINING,
    TEST_CIRCUITS,
    TRAINING_SEEDS,
    generated_seed,
    held_out_reason,
)
from pilotnet_brain.sim.circuits import check_drivable, load_circuit
from pilotnet_brain.sim.generated import (
    LAP_LENGTH_M,
    MIN_RADIUS_M,
    MIN_SEPARATION_M,
    corner_count,
    generated_layout,
    generated_spec,
)
from pilotnet_brain.sim.world import SimConfig

GENERATED_SETS = {"generated-training": GENERATED_TRAINING, "generated-evaluation": GENERATED_EVALUATION}
EVERY_GENERATED = pytest.mark.parametrize("name", GENERATED_TRAINING + GENERATED_EVALUATION)


def centerline_digest(name: str) -> str:
    return hashlib.sha256(load_circuit(name).centerline.tobytes()).hexdigest()


def separation_m(circuit) -> float:
    """Closest approach of two parts of the lap more than half a circle of MIN_SEPARATION_M apart along it
    (brute force on every 4th point, 2 m apart; the generator's own check uses a k-d tree)."""
    points = circuit.centerline[::4]
    index = np.arange(len(points))
    step = 4 * circuit.spacing_m
    best = math.inf
    for i in range(len(points)):
        apart = np.abs(index - i)
        along = np.minimum(apart, len(points) - apart) * step
        far = along > math.pi * MIN_SEPARATION_M / 2
        best = min(best, float(np.min(np.hypot(*(points[far] - points[i]).T))))
    return best


# --- determinism ---------------------------------------------------------------------------------------
def test_same_seed_same_circuit_even_in_another_process():
    fresh = generated_layout.__wrapped__(123)  # not the cached one: drawn again from the seed
    assert fresh == generated_layout(123)
    code = "import sys, hashlib; from pilotnet_brain.sim.circuits import load_circuit; "
    code += "print(hashlib.sha256(load_circuit('gen:123').centerline.tobytes()).hexdigest())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert other.stdout.strip() == centerline_digest("gen:123")
    ccw, cw = load_circuit("gen:123"), load_circuit("gen:123", direction="cw")  # the same loop, the other way
    assert np.array_equal(cw.centerline[0], ccw.centerline[0]) and cw.length_m == pytest.approx(ccw.length_m)


def test_different_seeds_give_different_circuits():
    names = GENERATED_TRAINING[:10]
    assert len({centerline_digest(name) for name in names}) == len(names)
    assert len({round(load_circuit(name).length_m) for name in names}) > len(names) // 2


# --- every circuit of the named sets is valid -----------------------------------------------------------
@EVERY_GENERATED
def test_generated_circuit_is_drivable_and_keeps_the_generator_rules(name):
    circuit = load_circuit(name)
    check_drivable(name, circuit.centerline, circuit.half_width_m)  # load_circuit ran it too; explicit here
    assert circuit.source == "generated" and circuit.half_width_m == BUILTIN_HALF_WIDTH_M
    assert circuit.min_radius_m() >= MIN_RADIUS_M
    assert LAP_LENGTH_M[0] <= circuit.length_m <= LAP_LENGTH_M[1]
    assert separation_m(circuit) >= MIN_SEPARATION_M


def test_the_sets_vary_like_race_tracks():
    """Tight hairpins and wide sweepers, short and long laps, few and many corners: not one shape."""
    circuits = [load_circuit(name) for name in GENERATED_TRAINING + GENERATED_EVALUATION]
    radii = [c.min_radius_m() for c in circuits]
    lengths = [c.length_m for c in circuits]
    corners = [corner_count(generated_spec(generated_seed(c.name))) for c in circuits]
    assert min(radii) < MIN_RADIUS_M + 1.0 and max(radii) > 2 * MIN_RADIUS_M
    assert min(lengths) < 800.0 and max(lengths) > 1500.0
    assert min(corners) <= 7 and max(corners) >= 15


# --- the split -------------------------------------------------------------------------------------------
def test_seed_split_is_disjoint_and_the_sets_come_from_their_ranges():
    assert TRAINING_SEEDS.stop <= EVALUATION_SEEDS.start  # disjoint ranges
    assert all(generated_seed(name) in TRAINING_SEEDS for name in GENERATED_TRAINING)
    assert all(generated_seed(name) in EVALUATION_SEEDS for name in GENERATED_EVALUATION)
    assert len(GENERATED_EVALUATION) >= 20 and len(set(GENERATED_TRAINING)) == len(GENERATED_TRAINING)
    for set_name, names in GENERATED_SETS.items():
        assert CIRCUIT_SETS[set_name] == names
    assert all(held_out_reason(name) is None for name in GENERATED_TRAINING)
    assert all("evaluation seed" in held_out_reason(name) for name in GENERATED_EVALUATION)


@pytest.mark.parametrize("set_name", GENERATED_SETS)
def test_cli_lists_and_describes_a_generated_set(set_name, capsys):
    assert run_cli(["circuits", "--set", set_name, "--names"], capsys)[:2] == (
        0,
        ",".join(CIRCUIT_SETS[set_name]) + "\n",
    )
    rc, out, _ = run_cli(["circuits", "--set", set_name], capsys)
    assert rc == 0
    assert [line.split()[0] for line in out.splitlines()[1 : 1 + len(CIRCUIT_SETS[set_name])]] == list(
        CIRCUIT_SETS[set_name]
    )


# --- bad names -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gen:abc", "gen:-1", "gen:", "gen:1.5", "gen:007", "gen: 7", "gen:1000000"])
def test_bad_seed_is_one_line_naming_it(name, capsys):
    for check in (load_circuit, check_circuit):
        with pytest.raises(CircuitError) as error:
            check(name)
        message = str(error.value)
        assert "\n" not in message and repr(name) in message and "0..999999" in message
    rc, out, err = run_cli(["drive", "--circuit", name], capsys)
    assert_clean_failure(rc, out, err, "--circuit", name)


def test_generated_names_go_wherever_a_circuit_name_does(tmp_path, capsys):
    assert check_circuit("gen:0") == "gen:0"
    config = tmp_path / "sim.yaml"
    config.write_text("sim_node:\n  ros__parameters:\n    circuit: gen:900000\n")
    rc, out, err = run_cli(["drive", "--config", config, "--timeout", "0.5", "--quiet", "--json"], capsys)
    assert rc == 1, err  # not a lap in half a second, but it drove gen:900000
    assert json.loads(out)["circuit"] == "gen:900000"


# --- held out from training ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gen:900001", TEST_CIRCUITS[0]])
def test_record_refuses_held_out_circuits(name, tmp_path, capsys):
    out_dir = tmp_path / "data"
    rc, out, err = run_cli(["record", "--out", out_dir, "--circuits", f"gen:0,{name}"], capsys)
    assert_clean_failure(rc, out, err, repr(name), "never trained on", "--held-out")
    assert not out_dir.exists()  # refused before anything is written


@pytest.mark.skipif(not SHARED_TRACKS.is_dir(), reason="shared eval tracks not present")
def test_record_refuses_a_shared_real_track_and_a_copy_of_it(tmp_path, capsys):
    track = sorted(SHARED_TRACKS.glob("*.csv"))[0]
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(track.read_bytes())
    for path in (track, copy):
        rc, out, err = run_cli(["record", "--out", tmp_path / "data", "--circuits", path], capsys)
        assert_clean_failure(rc, out, err, str(path), "shared real track")


def test_held_out_recording_is_marked_and_never_trained_on(tmp_path, capsys):
    out_dir = tmp_path / "test_data"
    argv = ["record", "--out", out_dir, "--circuits", "gen:900001", "--direction", "ccw", "--held-out"]
    rc, _, err = run_cli([*argv, "--frame-stride", "30", "--timeout", "1"], capsys)
    assert rc == 2 and "incomplete" in err  # cut short on purpose: a second of frames is enough here
    assert json.loads((out_dir / "dataset.json").read_text())["held_out"] is True
    with pytest.raises(CircuitError, match="held-out test data"):
        check_trainable(out_dir)
    rc, out, err = run_cli(["train", "--data", out_dir, "--out", tmp_path / "m.safetensors"], capsys)
    assert_clean_failure(rc, out, err, str(out_dir), "held-out")
    # An older recording without the mark is refused by its sequences' circuit names.
    (out_dir / "dataset.json").unlink()
    with pytest.raises(CircuitError, match="gen:900001_ccw.*evaluation seed"):
        check_trainable(out_dir)


# --- the expert drives them ----------------------------------------------------------------------------
def test_expert_completes_a_generated_circuit():
    """The shortest circuit of the training sample, one direction (the full sets: README figures)."""
    name = min(GENERATED_TRAINING, key=lambda n: load_circuit(n).length_m)
    circuit = load_circuit(name, direction="cw")
    metrics = drive(circuit, "cw", ExplicitBrain(), SimConfig(clock="lockstep", latency_s=0.002)).metrics
    assert metrics["end_reason"] == "lap_completed" and metrics["completed_pct"] == 100.0, metrics
    assert metrics["off_track_events"] == 0
