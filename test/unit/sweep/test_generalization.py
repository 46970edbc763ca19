"""`pilotnet-brain generalization`: the comparison of a brain with the expert (ratios, goals, the level scan)
on synthetic run objects, the sweeps it plans, bad options, and one tiny real evaluation through the CLI."""

import json
from pathlib import Path

import pytest
from conftest import assert_clean_failure, run_cli, stadium_centerline

from pilotnet_brain.cli import sweep as sweep_cli
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.jsonio import dumps_strict
from pilotnet_brain.sim.builtin_circuits import GENERATED_EVALUATION, TEST_CIRCUITS
from pilotnet_brain.sim.conditions import CONDITION_NAMES
from pilotnet_brain.sweep import generalization as gen
from pilotnet_brain.sweep.spec import sweep_spec

BRAIN, EXPERT = "pilotnet_fp32", "explicit"
EXPERT_SPEED, EXPERT_DEVIATION = 10.0, 0.05


def run(brain, circuit, direction, condition="none", completed=100.0, speed=10.0, deviation=0.05, error=None):
    """A sweep run object as the engine returns it (the keys the comparison reads)."""
    row = {
        "brain": brain,
        "circuit": circuit,
        "direction": direction,
        "condition": condition,
        "repeat": 0,
        "seed": 0,
        "completed_pct": completed,
        "average_speed_mps": speed,
        "position_deviation_mae_m": deviation,
    }
    if error:
        row.update(error=error, completed_pct=0.0, average_speed_mps=None, position_deviation_mae_m=None)
    return row


def expert_runs(circuit_runs):
    return [run(EXPERT, c.name, c.direction, speed=EXPERT_SPEED, deviation=EXPERT_DEVIATION) for c in circuit_runs]


def plan(**options):
    defaults = {"shared_tracks": [Path("/tracks/Budapest.csv")], "generated": ["gen:900000"]}
    return gen.make_plan(BRAIN, EXPERT, **{**defaults, **options})


def goal(report, name):
    return next(g for g in report["goals"] if g["goal"] == name)


# --- what runs ---------------------------------------------------------------------------------------
def test_the_plan_drives_the_shared_tracks_both_ways_and_the_generated_circuits_as_asked():
    p = plan(generated_directions=["ccw"])
    assert [(c.spec, c.name, c.direction) for c in p.unseen] == [
        ("/tracks/Budapest.csv", "Budapest", "ccw"),
        ("/tracks/Budapest.csv", "Budapest", "cw"),
        ("gen:900000", "gen:900000", "ccw"),
    ]
    assert [(c.name, c.direction) for c in p.test] == [(t, d) for t in TEST_CIRCUITS for d in ("ccw", "cw")]
    assert gen.generated_circuits(len(GENERATED_EVALUATION)) == GENERATED_EVALUATION
    assert gen.generated_circuits(0) == ()
    assert plan(parts=["test"]).unseen == ()
    assert plan().conditions == CONDITION_NAMES and plan().parts == gen.PARTS  # by default: every one
    for bad in ({"parts": ["unseen", "speed"]}, {"conditions": ["fog"]}):
        with pytest.raises(ValueError, match="speed|fog"):
            plan(**bad)
    with pytest.raises(ValueError, match="both 'explicit'"):
        gen.make_plan(EXPERT, EXPERT)


def test_the_planned_sweeps_cover_each_part_and_are_valid_sweeps(tmp_path):
    p = plan(conditions=["lighting", "noise"])
    settings = gen.sweep_settings(p, "pilotnet_fp32", "explicit")
    covered = {
        (tuple(s["brains"]), circuit, direction, condition)
        for s in settings
        for circuit in s["circuits"]
        for direction in s["directions"]
        for condition in s["conditions"]
    }
    both = (EXPERT, BRAIN)
    expected = {(both, c.spec, c.direction, "none") for c in p.unseen + p.test}
    expected |= {((BRAIN,), c.spec, c.direction, f"{n}=0.5") for c in p.test for n in ("lighting", "noise")}
    assert covered == expected
    for s in settings:  # each one a sweep the engine takes
        sweep_spec(options={**s, "latency_ms": 2, "out": str(tmp_path)})
    # The conditions (and the scan) need the clear runs of the test circuits even without the test part.
    only_conditions = gen.sweep_settings(plan(parts=["conditions"], conditions=["noise"]), BRAIN, EXPERT)
    assert [s["conditions"] for s in only_conditions] == [["none"], ["noise=0.5"]]
    scan_only = gen.sweep_settings(plan(parts=["unseen"], level_scan=True), BRAIN, EXPERT)
    assert {c for s in scan_only for c in s["circuits"]} >= set(TEST_CIRCUITS)
    assert gen.scan_settings(p, BRAIN, 0.75, ["noise"])["conditions"] == ["noise=0.75"]


# --- the comparison ---------------------------------------------------------------------------------------
def test_ratios_and_the_unseen_goal():
    p = plan(generated_directions=["ccw"])
    shared_ccw, shared_cw, generated = p.unseen
    rows = expert_runs(p.unseen) + [
        run(BRAIN, shared_ccw.name, "ccw", speed=9.8, deviation=0.08),  # 98 %, 0.08 m: passes
        run(BRAIN, shared_cw.name, "cw", speed=9.6, deviation=0.08),  # 96 % of the expert's speed
        run(BRAIN, generated.name, "ccw", completed=62.5, speed=10.2, deviation=0.12),
    ]
    report = gen.generalization_report(rows, p)
    first, second, third = report["unseen"]
    assert first["speed_vs_expert_pct"] == pytest.approx(98.0)
    assert first["deviation_vs_expert"] == pytest.approx(0.08 / EXPERT_DEVIATION)
    assert (first["verdict"], first["problems"]) == ("PASS", [])
    assert second["verdict"] == "FAIL" and second["problems"] == ["speed 96.00 % of the expert's (< 97 %)"]
    assert third["verdict"] == "FAIL"
    assert third["problems"] == ["completed 62.5 %", "deviation MAE 0.120 m (> 0.1 m)"]
    unseen = goal(report, "unseen circuits")
    assert (unseen["verdict"], unseen["runs"], unseen["passed"]) == ("FAIL", 3, 1)
    assert unseen["problems"][0].startswith("Budapest cw: speed 96.00 %")
    assert not gen.passed(report)
    # every unseen run good: PASS
    rows = expert_runs(p.unseen) + [run(BRAIN, c.name, c.direction, speed=9.9, deviation=0.09) for c in p.unseen]
    assert goal(gen.generalization_report(rows, p), "unseen circuits")["verdict"] == "PASS"


def test_the_test_goal_compares_the_deviation_with_the_experts():
    p = plan(parts=["test"])
    rows = expert_runs(p.test) + [run(BRAIN, c.name, c.direction, speed=9.95, deviation=0.07) for c in p.test]
    report = gen.generalization_report(rows, p)
    assert goal(report, "test circuits (clear)")["verdict"] == "PASS" and gen.passed(report)
    assert report["unseen"] is None and report["conditions"] is None and report["level_scan"] is None
    rows[-1] = run(BRAIN, p.test[-1].name, p.test[-1].direction, speed=9.95, deviation=0.08)  # 1.6x the expert's
    rows[-2] = run(BRAIN, p.test[-2].name, p.test[-2].direction, speed=9.85, deviation=0.07)  # 98.5 % speed
    test = goal(gen.generalization_report(rows, p), "test circuits (clear)")
    assert test["verdict"] == "FAIL" and test["passed"] == len(p.test) - 2
    assert test["problems"] == [
        "montmelo ccw: speed 98.50 % of the expert's (< 99 %)",
        "montmelo cw: deviation MAE 1.60x the expert's (> 1.5x)",
    ]


def test_a_missing_or_failed_run_is_incomplete_or_failed_never_a_pass():
    p = plan(parts=["test"])
    first, second, third, *rest = p.test
    rows = expert_runs(p.test[1:])  # no expert run on the first
    rows[1] = run(EXPERT, third.name, third.direction, error="RuntimeError: boom")  # the expert's failed
    rows += [run(BRAIN, c.name, c.direction) for c in (first, third, *rest)]  # the brain's missing on the second
    report = gen.generalization_report(rows, p)
    by_run = {(r["circuit"], r["direction"]): r for r in report["test"]}
    assert by_run[(first.name, first.direction)]["problems"] == ["no expert run to compare with"] * 2
    assert by_run[(second.name, second.direction)]["problems"] == ["not run"]
    assert by_run[(third.name, third.direction)]["problems"][0].startswith("the expert's run failed (RuntimeError")
    assert {by_run[k]["verdict"] for k in list(by_run)[:3]} == {"INCOMPLETE"}
    assert goal(report, "test circuits (clear)")["verdict"] == "INCOMPLETE" and not gen.passed(report)
    # A failed brain run counts 0 % completed: FAIL, whatever else is missing.
    rows.append(run(BRAIN, second.name, second.direction, error="ModelFileError: bad model"))
    report = gen.generalization_report(rows, p)
    failed = next(r for r in report["test"] if (r["circuit"], r["direction"]) == (second.name, second.direction))
    assert failed["completed_pct"] == 0.0 and failed["problems"] == ["failed (ModelFileError: bad model)"]
    assert goal(report, "test circuits (clear)")["verdict"] == "FAIL"


def test_an_unseen_part_without_circuits_is_skipped_with_its_note():
    note = "shared real tracks: /nowhere not found"
    p = gen.make_plan(BRAIN, EXPERT, parts=["unseen"], notes=[note])
    report = gen.generalization_report([], p)
    assert goal(report, "unseen circuits")["verdict"] == "SKIPPED" and gen.passed(report)
    text = gen.report_markdown(report)
    assert f"Note: {note}" in text and "**SKIPPED** unseen circuits" in text


def conditions_rows(p, outcomes):
    """The clear runs of both brains on the test circuits, and the brain under each (name, level) of
    `outcomes` ({(name, level): (completed, deviation)}, on every test circuit and direction)."""
    rows = expert_runs(p.test) + [run(BRAIN, c.name, c.direction, speed=9.9, deviation=0.06) for c in p.test]
    for (name, level), (completed, deviation) in outcomes.items():
        label = gen.condition_label(name, level)
        rows += [run(BRAIN, c.name, c.direction, label, completed, 9.5, deviation) for c in p.test]
    return rows


def test_the_conditions_goal_compares_with_the_brains_own_clear_deviation():
    p = plan(parts=["conditions"], conditions=["lighting", "noise", "camera_yaw"])
    outcomes = {("lighting", 0.5): (100.0, 0.084), ("noise", 0.5): (100.0, 0.096), ("camera_yaw", 0.5): (71.0, 0.07)}
    report = gen.generalization_report(conditions_rows(p, outcomes), p)
    summary = {s["condition"]: s for s in report["conditions"]["summary"]}
    assert summary["lighting"]["verdict"] == "PASS"  # 1.4x its clear 0.06 m
    assert summary["lighting"]["deviation_vs_clear_max"] == pytest.approx(1.4)
    assert summary["lighting"]["speed_vs_expert_pct_min"] == pytest.approx(95.0)  # shown, not a goal here
    assert summary["noise"]["verdict"] == "FAIL"  # 1.6x
    assert summary["noise"]["problems"][0] == "simple_circuit ccw noise=0.5: deviation MAE 1.60x its own clear (> 1.5x)"
    assert summary["camera_yaw"]["verdict"] == "FAIL" and summary["camera_yaw"]["completed_pct_min"] == 71.0
    conditions = goal(report, "conditions at moderate")
    assert conditions["verdict"] == "FAIL" and conditions["runs"] == 3 * len(p.test)
    assert report["test"] is None  # the clear runs are compared with, the test part is not reported


def test_the_level_scan_stops_each_condition_at_its_first_failing_level():
    p = plan(parts=["conditions"], conditions=["lighting", "noise", "shadows"], level_scan=True)
    outcomes = {}
    assert gen.next_scan_round(conditions_rows(p, outcomes), p) == (0.25, ("lighting", "noise", "shadows"))
    outcomes |= {("lighting", 0.25): (100.0, 0.06), ("noise", 0.25): (40.0, 0.2), ("shadows", 0.25): (100.0, 0.06)}
    # the conditions part drove 0.5 already: the scan goes on at 0.75
    outcomes |= {("lighting", 0.5): (100.0, 0.07), ("shadows", 0.5): (100.0, 0.07), ("noise", 0.5): (10.0, 0.3)}
    assert gen.next_scan_round(conditions_rows(p, outcomes), p) == (0.75, ("lighting", "shadows"))
    outcomes |= {("lighting", 0.75): (100.0, 0.08), ("shadows", 0.75): (100.0, 0.1)}  # shadows: 1.67x
    assert gen.next_scan_round(conditions_rows(p, outcomes), p) == (1.0, ("lighting",))
    outcomes |= {("lighting", 1.0): (100.0, 0.085)}
    rows = conditions_rows(p, outcomes)
    assert gen.next_scan_round(rows, p) is None
    report = gen.generalization_report(rows, p)
    scan = {r["condition"]: r for r in report["level_scan"]}
    assert (
        scan["lighting"]["first_failing_level"] is None and scan["lighting"]["status"] == "passes every level up to 1"
    )
    assert [entry["verdict"] for entry in scan["lighting"]["levels"]] == ["PASS"] * 4
    assert scan["noise"]["first_failing_level"] == 0.25 and len(scan["noise"]["levels"]) == 1
    assert scan["shadows"]["first_failing_level"] == 0.75 and scan["shadows"]["status"] == "fails at 0.75"
    text = gen.report_markdown(report)
    assert "| shadows | PASS | PASS | FAIL | - | 0.75 | fails at 0.75 |" in text
    assert "- level scan: lighting passes every level up to 1; noise fails at 0.25; shadows fails at 0.75" in text


def test_the_report_is_strict_json_and_markdown_with_a_verdict_per_goal():
    p = plan(conditions=["lighting"])
    rows = conditions_rows(p, {("lighting", 0.5): (100.0, float("nan"))})  # NaN: a value no JSON may hold
    rows += expert_runs(p.unseen) + [run(BRAIN, c.name, c.direction, speed=9.9, deviation=0.05) for c in p.unseen]
    report = gen.generalization_report(rows, p, {"latency": "2 ms"})
    json.loads(dumps_strict(report))
    text = gen.report_markdown(report)
    tables = ("## Unseen circuits", "## Test circuits, clear", "## Conditions at level moderate", "## Goals")
    positions = [text.index(heading) for heading in tables]
    assert positions == sorted(positions)
    goals = text[positions[-1] :]
    assert "**PASS** unseen circuits" in goals and "**PASS** test circuits (clear)" in goals
    assert "**FAIL** conditions at moderate" in goals and "no deviation" in goals
    assert "Settings: latency 2 ms." in text


# --- the command ------------------------------------------------------------------------------------------
def test_shared_tracks_default_missing_is_said_given_missing_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_cli, "SHARED_EVAL_TRACKS", tmp_path / "no_shared")
    tracks, notes = sweep_cli._shared_tracks(None)
    assert tracks == () and "no_shared not found" in notes[0] and "--shared-tracks" in notes[0]
    with pytest.raises(ConfigError, match="--shared-tracks: .*missing is not a directory"):
        sweep_cli._shared_tracks(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="holds no .csv track"):
        sweep_cli._shared_tracks(str(tmp_path))
    (tmp_path / "b.csv").write_text("x")
    (tmp_path / "a.csv").write_text("x")
    assert sweep_cli._shared_tracks(str(tmp_path)) == ((tmp_path / "a.csv", tmp_path / "b.csv"), ())


BAD_OPTIONS = [
    (["--brain", "no_such_brain"], ["--brain", "no_such_brain"]),
    (["--brain", "explicit"], ["--brain and --expert", "explicit"]),
    (["--brain", "explicit", "--expert", "no_such_expert"], ["--expert", "no_such_expert"]),
    (["--brain", "pilotnet_fp32", "--parts", "unseen,speed"], ["--parts", "speed"]),
    (["--brain", "pilotnet_fp32", "--conditions", "fog"], ["--conditions", "fog"]),
    (["--brain", "pilotnet_fp32", "--shared-tracks", "/no/such/tracks"], ["--shared-tracks", "/no/such/tracks"]),
    (["--brain", "pilotnet_fp32", "--latency-ms", "-1"], ["--latency-ms"]),
    (["--brain", "pilotnet_fp32", "--generated", "-2"], ["--generated"]),
]


@pytest.mark.parametrize("options,names", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_bad_options_are_one_line(options, names, tmp_path, capsys):
    rc, out, err = run_cli(["generalization", *options, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, *names)
    assert not (tmp_path / "out").exists()


def test_a_tiny_evaluation_through_the_cli_and_its_resumption(tmp_path, capsys):
    # One small CSV "shared track" both ways and one generated circuit ccw, 2 simulated s per run: no run
    # completes a lap, so the goal fails; the brain is the expert with a lower speed limit (no torch to load).
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    xy = stadium_centerline(spacing=5.0)
    rows = "\n".join(f"{x:.3f},{y:.3f},3.5,3.5" for x, y in xy)
    (tracks / "stadium.csv").write_text(f"# x_m,y_m,w_tr_right_m,w_tr_left_m\n{rows}\n")
    brain = tmp_path / "slow_expert.yaml"
    brain.write_text("brain_node:\n  ros__parameters:\n    brain: explicit\n    max_v: 6.0\n")
    out = tmp_path / "eval"
    argv = ["generalization", "--brain", brain, "--parts", "unseen", "--shared-tracks", tracks, "--generated", "1"]
    argv += ["--generated-directions", "ccw", "--timeout", "2", "--workers", "2", "--quiet", "--out", out]
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 1, err[-3000:]
    report = json.loads((out / "generalization.json").read_text())
    assert (report["brain"], report["expert"]) == ("slow_expert", "explicit")
    assert [(r["circuit"], r["direction"]) for r in report["unseen"]] == [
        ("stadium", "ccw"),
        ("stadium", "cw"),
        ("gen:900000", "ccw"),
    ]
    for row in report["unseen"]:
        assert 0 < row["completed_pct"] < 100 and row["expert_completed_pct"] > 0 and row["verdict"] == "FAIL"
        assert row["speed_vs_expert_pct"] is not None and row["deviation_vs_expert"] is not None
    (unseen,) = report["goals"]
    assert unseen["verdict"] == "FAIL" and unseen["problems"][0].startswith("stadium ccw: completed ")
    assert {(r["brain"], r["condition"], r["seed"]) for r in report["runs"]} == {
        (b, "none", 0) for b in ("slow_expert", "explicit")
    }
    assert len(report["runs"]) == 6
    markdown = (out / "generalization.md").read_text()
    assert markdown in stdout and "**FAIL** unseen circuits" in markdown
    for name in ("sweep.json", "sweep.csv", "summary.md", "report.html"):
        assert (out / "sweep" / name).stat().st_size > 0
    # A rerun drives nothing and gives the same report.
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 1 and "all 6 runs already finished" in err
    assert json.loads((out / "generalization.json").read_text()) == report
