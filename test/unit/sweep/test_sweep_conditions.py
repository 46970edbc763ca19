"""Condition sets in a sweep: `--conditions "none;lighting=0.5,noise=moderate"` (or a YAML list), checked by
sim.conditions.parse_conditions, canonical in the config hash, passed to the simulator with a seed per repeat."""

import json

import pytest
import yaml
from conftest import assert_clean_failure, run_cli

from pilotnet_brain.sweep.engine import plan_runs, run_sweep
from pilotnet_brain.sweep.spec import sweep_spec
from pilotnet_brain.sweep.store import RunStore


def _plan(tmp_path, conditions, repeats=1):
    spec = sweep_spec(
        options={"brains": ["explicit"], "circuits": ["simple_circuit"], "conditions": conditions, "repeats": repeats}
    )
    return plan_runs(spec, RunStore(tmp_path / "out"))


def test_condition_sets_are_canonical_and_each_repeat_has_its_seed(tmp_path):
    plan = _plan(tmp_path, "none; lighting=moderate,noise=0.5 ;shadows=mild", repeats=2)
    assert [(p.task.condition, p.task.repeat) for p in plan] == [
        (label, repeat) for label in ("none", "lighting=0.5,noise=0.5", "shadows=0.25") for repeat in (0, 1)
    ]
    for planned in plan:  # what the simulator gets (sim_config_from_parameters), and what the hash covers
        assert planned.task.sim_params["conditions"] == planned.task.condition
        assert planned.task.sim_params["seed"] == planned.task.repeat  # config/simulation.yaml's 0 + repeat
        assert planned.configuration["simulator"] == planned.task.sim_params
        assert {k: planned.task.identity()[k] for k in ("condition", "seed")} == {
            "condition": planned.task.condition,
            "seed": planned.task.repeat,
        }
    assert len({p.task.config_hash for p in plan}) == len(plan)
    # Another spelling of the same sets (the file's YAML list, order of items, level names): the same runs.
    again = _plan(tmp_path, ["none", "noise=moderate,lighting=0.5", "shadows=0.25"], repeats=2)
    assert [p.task.config_hash for p in again] == [p.task.config_hash for p in plan]


def test_a_sweep_file_takes_a_list_of_sets(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"brains": ["explicit"], "conditions": ["none", "lighting=0.5,camera_yaw=1"]}))
    assert sweep_spec(path).conditions == ["none", "lighting=0.5,camera_yaw=1"]
    path.write_text(yaml.safe_dump({"brains": ["explicit"], "conditions": "none;noise=severe"}))
    assert sweep_spec(path).conditions == ["none", "noise=1"]


BAD_SETS = [
    ("fog=0.5", ["--conditions", "'fog'", "valid names"]),
    ("none;lighting=2", ["--conditions", "lighting=2", "outside [0, 1]"]),
    ("none,lighting=0.5", ["--conditions", "separate them with ';'"]),
    ("lighting=0.5;lighting=moderate", ["--conditions", "'lighting=0.5' given more than once"]),
    (" ; ", ["--conditions", "names no condition set"]),
]


@pytest.mark.parametrize("conditions,names", BAD_SETS, ids=[c for c, _ in BAD_SETS])
def test_bad_condition_sets_are_one_line(conditions, names, tmp_path, capsys):
    argv = ["sweep", "--brains", "explicit", "--conditions", conditions, "--out", tmp_path / "out"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, *names)
    assert not (tmp_path / "out").exists()


def test_a_bad_set_in_a_sweep_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"brains": ["explicit"], "conditions": [{"lighting": 0.5}]}))
    rc, out, err = run_cli(["sweep", "--file", path, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, str(path), "conditions", "list of condition sets")


def test_a_sweep_drives_each_condition_set_and_resumes(tmp_path, capsys):
    # The explicit brain sees the camera only: with the camera turned (camera_yaw), it drives differently.
    out = tmp_path / "out"
    argv = ["sweep", "--brains", "explicit", "--circuits", "simple_circuit", "--timeout", "3", "--latency-ms", "2"]
    argv += ["--conditions", "none;lighting=moderate,camera_yaw=0.5", "--workers", "2", "--quiet", "--out", out]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err[-3000:]
    runs = json.loads((out / "sweep.json").read_text())
    assert [(r["condition"], r["seed"]) for r in runs] == [("none", 0), ("lighting=0.5,camera_yaw=0.5", 0)]
    assert all(r["completed_pct"] > 0 and not r.get("error") for r in runs)
    assert runs[0]["position_deviation_mae_m"] != runs[1]["position_deviation_mae_m"]
    for run in runs:
        config = json.loads((out / run["run_dir"] / "config.json").read_text())
        assert config["condition"] == config["simulator"]["conditions"] == run["condition"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0 and "all 2 runs already finished" in err
    assert json.loads((out / "sweep.json").read_text()) == runs


def test_ros_mode_passes_the_condition_set_and_seed_to_the_launcher(tmp_path):
    # A stand-in for launcher.run_simulation (pickled by value into the worker) reports what it was given.
    def run_simulation(circuit, direction, brain_config, clock, record, out_dir, timeout, **options):
        metrics = {"circuit": circuit, "direction": direction, "completed_pct": 100.0, "average_speed_mps": 5.0}
        metrics |= {"condition": options["conditions"], "launcher_seed": options["seed"]}
        return {"metrics": metrics, "metrics_path": None, "bag_path": None}

    spec = sweep_spec(
        options={
            "brains": ["explicit"],
            "circuits": ["simple_circuit"],
            "conditions": "noise=moderate",
            "repeats": 2,
            "mode": "ros",
            "workers": 2,
            "out": str(tmp_path / "out"),
        }
    )
    rows = run_sweep(spec, progress=False, run_fn=run_simulation, log=lambda text: None).rows
    assert [(r["condition"], r["seed"], r["launcher_seed"]) for r in rows] == [("noise=0.5", 0, 0), ("noise=0.5", 1, 1)]
