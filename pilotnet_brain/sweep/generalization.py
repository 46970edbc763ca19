"""`pilotnet-brain generalization`: how a learned brain drives where it was never trained, against the
expert (issue 15), as sweeps on the sweep engine. This module is the pure part, without Ray: which runs
each part takes (sweep settings), and from the run objects (rows in) the comparison tables, the goals'
verdicts and the level scan (tables out). cli/sweep.py runs the sweeps.

Parts (a brain run is compared with the expert's on the same circuit and direction, clear):

- unseen: the shared real tracks (scale 1, both directions) and generated circuits of the evaluation seeds.
  Goal: every run 100 % completed, speed >= 97 % of the expert's, deviation MAE <= 0.10 m.
- test: the held-out test circuits, both directions, clear. Goal: every run 100 % completed, speed >= 99 %
  of the expert's, deviation MAE <= 1.5x the expert's.
- conditions: each condition at level moderate on the test circuits, both directions (the brain only). Goal:
  100 % completed, deviation MAE <= 1.5x the brain's own on the same circuit and direction, clear.
- level scan (optional): each condition at SCAN_LEVELS in turn on the test circuits, both directions, up to
  the first level that misses the conditions goal (that level is reported).

A goal is PASS when every run meets it, FAIL when a run misses it (a failed run counts 0 % completed),
INCOMPLETE when nothing fails but a run, or the run it is compared with, is missing; SKIPPED when the part
has no runs (its notes say why). One run per brain x circuit x direction x condition (repeat 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pilotnet_brain.config import DIRECTION
from pilotnet_brain.evaluation.metrics import metrics_table
from pilotnet_brain.sim.builtin_circuits import EVALUATION_SEEDS, GENERATED_PREFIX, TEST_CIRCUITS
from pilotnet_brain.sim.conditions import CLEAR, CONDITION_NAMES, LEVEL_NAMES, Conditions

PARTS = ("unseen", "test", "conditions")
BOTH_DIRECTIONS = DIRECTION.choices
#: The level of the conditions part, and the levels of the scan, in the order they are driven.
CONDITION_LEVEL = LEVEL_NAMES["moderate"]
SCAN_LEVELS = (0.25, 0.5, 0.75, 1.0)

# The goals (issue 15).
FULL_LAP_PCT = 100.0
UNSEEN_MIN_SPEED_PCT = 97.0  # of the expert's
UNSEEN_MAX_DEVIATION_M = 0.10
TEST_MIN_SPEED_PCT = 99.0  # of the expert's
TEST_MAX_DEVIATION_RATIO = 1.5  # of the expert's
CONDITIONS_MAX_DEVIATION_RATIO = 1.5  # of the brain's own, clear

PASS, FAIL, INCOMPLETE, SKIPPED = "PASS", "FAIL", "INCOMPLETE", "SKIPPED"

UNSEEN_GOAL = (
    f"every run {FULL_LAP_PCT:g} % completed, speed >= {UNSEEN_MIN_SPEED_PCT:g} % of the expert's, "
    f"deviation MAE <= {UNSEEN_MAX_DEVIATION_M:g} m"
)
TEST_GOAL = (
    f"every run {FULL_LAP_PCT:g} % completed, speed >= {TEST_MIN_SPEED_PCT:g} % of the expert's, "
    f"deviation MAE <= {TEST_MAX_DEVIATION_RATIO:g}x the expert's"
)
CONDITIONS_GOAL = (
    f"each condition at level moderate ({CONDITION_LEVEL:g}): {FULL_LAP_PCT:g} % completed on the test circuits "
    f"both ways, deviation MAE <= {CONDITIONS_MAX_DEVIATION_RATIO:g}x the brain's own clear-condition deviation"
)

_SPEED = "average_speed_mps"
_DEVIATION = "position_deviation_mae_m"
_COMPLETED = "completed_pct"


# --------------------------------------------------------------------------- what runs


@dataclass(frozen=True)
class CircuitRun:
    """A circuit and direction of a part: `spec` as the sweep takes it (a name or a CSV path), `name` as the
    run objects call it (a CSV: its file's stem)."""

    spec: str
    name: str
    direction: str


@dataclass(frozen=True)
class Plan:
    """What an evaluation drives: brain and expert (their labels in the run objects), the parts chosen, the
    circuits of the unseen part and of the test circuits, the conditions, the level scan, and notes (what
    was left out and why)."""

    brain: str
    expert: str
    parts: tuple = PARTS
    unseen: tuple = ()  # CircuitRun
    test: tuple = ()  # CircuitRun: the test circuits, both directions
    conditions: tuple = CONDITION_NAMES
    level_scan: bool = False
    notes: tuple = ()


def generated_circuits(count: int) -> tuple:
    """The first `count` generated circuits of the evaluation seeds (`gen:SEED`; the first 20 are the
    `generated-evaluation` set)."""
    if not 0 <= count <= len(EVALUATION_SEEDS):
        raise ValueError(f"{count} generated circuits: allowed 0..{len(EVALUATION_SEEDS)} (the evaluation seeds)")
    return tuple(f"{GENERATED_PREFIX}{seed}" for seed in EVALUATION_SEEDS[:count])


def make_plan(
    brain: str,
    expert: str,
    parts=PARTS,
    shared_tracks=(),
    generated=(),
    generated_directions=BOTH_DIRECTIONS,
    conditions=CONDITION_NAMES,
    level_scan: bool = False,
    notes=(),
) -> Plan:
    """The Plan: shared_tracks are CSV paths (driven both ways), generated circuit names (driven in
    generated_directions); conditions are names of sim.conditions.CONDITIONS."""
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    if brain == expert:
        raise ValueError(f"the brain and the expert are both {brain!r}: compare two different brains")
    unseen = ()
    if "unseen" in parts:
        unseen = tuple(CircuitRun(str(path), Path(path).stem, d) for path in shared_tracks for d in BOTH_DIRECTIONS)
        unseen += tuple(CircuitRun(name, name, d) for name in generated for d in generated_directions)
    test = tuple(CircuitRun(name, name, d) for name in TEST_CIRCUITS for d in BOTH_DIRECTIONS)
    Conditions.of(dict.fromkeys(conditions, CONDITION_LEVEL))  # unknown names: ValueError
    return Plan(brain, expert, tuple(parts), unseen, test, tuple(conditions), bool(level_scan), tuple(notes))


def condition_label(name: str, level: float) -> str:
    """The canonical label of one condition at a level ('lighting', 0.5 -> 'lighting=0.5')."""
    return Conditions.of({name: level}).label


def _product_settings(brains: list, runs: tuple, conditions: list) -> list:
    """Sweep settings ({brains, circuits, directions, conditions}) covering `runs`: one product per set of
    directions (the shared tracks both ways, generated circuits perhaps one way)."""
    directions_of: dict = {}
    for run in runs:
        directions_of.setdefault(run.spec, []).append(run.direction)
    circuits_of: dict = {}
    for spec, directions in directions_of.items():
        circuits_of.setdefault(tuple(directions), []).append(spec)
    return [
        {"brains": list(brains), "circuits": circuits, "directions": list(directions), "conditions": list(conditions)}
        for directions, circuits in circuits_of.items()
    ]


def sweep_settings(plan: Plan, brain: str, expert: str) -> list:
    """The sweeps of the plan's parts (the level scan's come later, round by round: scan_settings); brain
    and expert as the sweep takes them (preset names or brain_node YAML paths). The clear runs of both on
    the test circuits come with every part but unseen: the conditions and the scan compare with them."""
    settings = []
    if plan.unseen:
        settings += _product_settings([expert, brain], plan.unseen, [CLEAR])
    if {"test", "conditions"} & set(plan.parts) or plan.level_scan:
        settings += _product_settings([expert, brain], plan.test, [CLEAR])
    if "conditions" in plan.parts and plan.conditions:
        labels = [condition_label(name, CONDITION_LEVEL) for name in plan.conditions]
        settings += _product_settings([brain], plan.test, labels)
    return settings


def scan_settings(plan: Plan, brain: str, level: float, names) -> dict:
    """The sweep of one round of the level scan: the brain on the test circuits under `names` at `level`."""
    (settings,) = _product_settings([brain], plan.test, [condition_label(name, level) for name in names])
    return settings


# --------------------------------------------------------------------------- comparisons


def index_runs(rows: list) -> dict:
    """The run objects by (brain, circuit, direction, condition); repeat 0 only."""
    return {
        (row.get("brain"), row.get("circuit"), row.get("direction"), row.get("condition")): row
        for row in rows
        if row.get("repeat") in (0, None)
    }


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _failed(row) -> bool:
    return row is not None and row.get("error") not in (None, "")


def _completed(row) -> float | None:
    """completed_pct of a run (a failed one: 0), None when there is no run."""
    if row is None:
        return None
    value = None if _failed(row) else _number(row.get(_COMPLETED))
    return 0.0 if value is None else value


def _metric(row, key: str) -> float | None:
    return None if row is None or _failed(row) else _number(row.get(key))


def _ratio(value, reference) -> float | None:
    return value / reference if value is not None and reference is not None and reference > 0 else None


def compare(runs: dict, plan: Plan, circuit_runs, condition: str = CLEAR) -> list:
    """One row per circuit and direction: the brain's run under `condition` against the expert's (clear) and,
    under a condition, the brain's own clear run."""
    rows = []
    for run in circuit_runs:
        brain = runs.get((plan.brain, run.name, run.direction, condition))
        expert = runs.get((plan.expert, run.name, run.direction, CLEAR))
        clear = runs.get((plan.brain, run.name, run.direction, CLEAR)) if condition != CLEAR else None
        speed, expert_speed = _metric(brain, _SPEED), _metric(expert, _SPEED)
        deviation, expert_deviation = _metric(brain, _DEVIATION), _metric(expert, _DEVIATION)
        speed_ratio = _ratio(speed, expert_speed)
        row = {
            "circuit": run.name,
            "direction": run.direction,
            "condition": condition,
            "completed_pct": _completed(brain),
            "expert_completed_pct": _completed(expert),
            "speed_mps": speed,
            "expert_speed_mps": expert_speed,
            "speed_vs_expert_pct": None if speed_ratio is None else 100.0 * speed_ratio,
            "deviation_mae_m": deviation,
            "expert_deviation_mae_m": expert_deviation,
            "deviation_vs_expert": _ratio(deviation, expert_deviation),
            "error": brain.get("error") if _failed(brain) else None,
            "expert_error": expert.get("error") if _failed(expert) else None,
            "expert_run": expert is not None,
        }
        if condition != CLEAR:
            clear_deviation = _metric(clear, _DEVIATION)
            row.update(
                clear_deviation_mae_m=clear_deviation,
                deviation_vs_clear=_ratio(deviation, clear_deviation),
                clear_run=clear is not None,
            )
        rows.append(row)
    return rows


def _missing_reference(row: dict, who: str) -> str:
    if not row[f"{who}_run"]:
        return "no expert run to compare with" if who == "expert" else "no clear run of the brain to compare with"
    if who == "expert" and row["expert_error"]:
        return f"the expert's run failed ({row['expert_error']})"
    return f"the {'expert' if who == 'expert' else 'clear'} run has no figure to compare with"


def check(
    row: dict,
    min_speed_pct: float | None = None,
    max_deviation_m: float | None = None,
    max_deviation_vs_expert: float | None = None,
    max_deviation_vs_clear: float | None = None,
) -> dict:
    """The row with its verdict (PASS, FAIL, INCOMPLETE) and `problems` (why not PASS) for a goal's limits."""
    problems, unknown = [], []
    if row["completed_pct"] is None:
        unknown.append("not run")
    elif row["error"]:
        problems.append(f"failed ({row['error']})")
    else:
        if row["completed_pct"] < FULL_LAP_PCT:
            problems.append(f"completed {row['completed_pct']:.1f} %")
        speed_pct, deviation = row["speed_vs_expert_pct"], row["deviation_mae_m"]
        if min_speed_pct is not None:
            if speed_pct is None:
                unknown.append(_missing_reference(row, "expert") if row["speed_mps"] is not None else "no speed")
            elif speed_pct < min_speed_pct:
                problems.append(f"speed {speed_pct:.2f} % of the expert's (< {min_speed_pct:g} %)")
        if deviation is None and (max_deviation_m, max_deviation_vs_expert, max_deviation_vs_clear) != (None,) * 3:
            problems.append("no deviation (no checkpoint reached)")
        if deviation is not None and max_deviation_m is not None and deviation > max_deviation_m:
            problems.append(f"deviation MAE {deviation:.3f} m (> {max_deviation_m:g} m)")
        for limit, key, who, whose in (
            (max_deviation_vs_expert, "deviation_vs_expert", "expert", "the expert's"),
            (max_deviation_vs_clear, "deviation_vs_clear", "clear", "its own clear"),
        ):
            if limit is None or deviation is None:
                continue
            if row[key] is None:
                unknown.append(_missing_reference(row, who))
            elif row[key] > limit:
                problems.append(f"deviation MAE {row[key]:.2f}x {whose} (> {limit:g}x)")
    verdict = FAIL if problems else INCOMPLETE if unknown else PASS
    return {**row, "verdict": verdict, "problems": problems + unknown}


def _unseen_check(row: dict) -> dict:
    return check(row, min_speed_pct=UNSEEN_MIN_SPEED_PCT, max_deviation_m=UNSEEN_MAX_DEVIATION_M)


def _test_check(row: dict) -> dict:
    return check(row, min_speed_pct=TEST_MIN_SPEED_PCT, max_deviation_vs_expert=TEST_MAX_DEVIATION_RATIO)


def _conditions_check(row: dict) -> dict:
    return check(row, max_deviation_vs_clear=CONDITIONS_MAX_DEVIATION_RATIO)


def _verdict(rows: list) -> str:
    verdicts = {row["verdict"] for row in rows}
    return FAIL if FAIL in verdicts else INCOMPLETE if INCOMPLETE in verdicts or not rows else PASS


def _where(row: dict) -> str:
    return f"{row['circuit']} {row['direction']}" + (f" {row['condition']}" if row["condition"] != CLEAR else "")


def _goal(name: str, criterion: str, rows: list, notes=()) -> dict:
    verdict = _verdict(rows) if rows else SKIPPED
    return {
        "goal": name,
        "criterion": criterion,
        "verdict": verdict,
        "runs": len(rows),
        "passed": sum(row["verdict"] == PASS for row in rows),
        "problems": [f"{_where(row)}: {'; '.join(row['problems'])}" for row in rows if row["problems"]],
        "notes": list(notes),
    }


def _extreme(values, pick):
    values = [v for v in values if v is not None]
    return pick(values) if values else None


def _condition_summary(name: str, level: float, rows: list) -> dict:
    return {
        "condition": name,
        "level": level,
        "label": condition_label(name, level),
        "runs": len(rows),
        "completed_pct_min": _extreme((row["completed_pct"] for row in rows), min),
        "speed_vs_expert_pct_min": _extreme((row["speed_vs_expert_pct"] for row in rows), min),
        "deviation_mae_m_max": _extreme((row["deviation_mae_m"] for row in rows), max),
        "deviation_vs_clear_max": _extreme((row["deviation_vs_clear"] for row in rows), max),
        "verdict": _verdict(rows),
        "problems": [f"{_where(row)}: {'; '.join(row['problems'])}" for row in rows if row["problems"]],
    }


def level_scan(runs: dict, plan: Plan) -> list:
    """Per condition, its levels in SCAN_LEVELS order up to the first that misses the conditions goal (FAIL),
    one that cannot be judged (INCOMPLETE) or one not driven yet (verdict None: the next round drives it)."""
    results = []
    for name in plan.conditions:
        levels, first_failing, status = [], None, f"passes every level up to {SCAN_LEVELS[-1]:g}"
        for level in SCAN_LEVELS:
            rows = [_conditions_check(row) for row in compare(runs, plan, plan.test, condition_label(name, level))]
            if any(row["completed_pct"] is None for row in rows):
                levels.append({"level": level, "verdict": None, "problems": []})
                status = f"not driven at {level:g} yet"
                break
            summary = _condition_summary(name, level, rows)
            levels.append({"level": level, "verdict": summary["verdict"], "problems": summary["problems"]})
            if summary["verdict"] == FAIL:
                first_failing, status = level, f"fails at {level:g}"
                break
            if summary["verdict"] == INCOMPLETE:
                status = f"cannot be judged at {level:g}"
                break
        results.append({"condition": name, "levels": levels, "first_failing_level": first_failing, "status": status})
    return results


def next_scan_round(rows: list, plan: Plan) -> tuple | None:
    """(level, condition names) of the scan's next round: the lowest level some condition still needs
    (every level below it passed), with every condition that needs it; None when the scan is done."""
    pending: dict = {}
    for result in level_scan(index_runs(rows), plan):
        last = result["levels"][-1]
        if last["verdict"] is None:
            pending.setdefault(last["level"], []).append(result["condition"])
    if not pending:
        return None
    level = min(pending)
    return level, tuple(pending[level])


def generalization_report(rows: list, plan: Plan, settings: dict | None = None) -> dict:
    """The evaluation from the sweeps' run objects: per part its comparison rows and goal, the level scan,
    and the goals in order (a strict-JSON-able dict; `report_markdown` renders it)."""
    runs = index_runs(rows)
    report = {
        "brain": plan.brain,
        "expert": plan.expert,
        "settings": dict(settings or {}),
        "parts": list(plan.parts),
        "notes": list(plan.notes),
        "unseen": None,
        "test": None,
        "conditions": None,
        "level_scan": None,
        "goals": [],
    }
    if "unseen" in plan.parts:
        checked = [_unseen_check(row) for row in compare(runs, plan, plan.unseen)]
        report["unseen"] = checked
        report["goals"].append(_goal("unseen circuits", UNSEEN_GOAL, checked, plan.notes))
    if "test" in plan.parts:
        checked = [_test_check(row) for row in compare(runs, plan, plan.test)]
        report["test"] = checked
        report["goals"].append(_goal("test circuits (clear)", TEST_GOAL, checked))
    if "conditions" in plan.parts:
        summaries, every_row = [], []
        for name in plan.conditions:
            label = condition_label(name, CONDITION_LEVEL)
            checked = [_conditions_check(row) for row in compare(runs, plan, plan.test, label)]
            summaries.append(_condition_summary(name, CONDITION_LEVEL, checked))
            every_row += checked
        report["conditions"] = {"summary": summaries, "runs": every_row}
        report["goals"].append(_goal("conditions at moderate", CONDITIONS_GOAL, every_row))
    if plan.level_scan:
        report["level_scan"] = level_scan(runs, plan)
    return report


def passed(report: dict) -> bool:
    """Whether no goal failed or is incomplete (a skipped part does not count)."""
    return all(goal["verdict"] in (PASS, SKIPPED) for goal in report["goals"])


# --------------------------------------------------------------------------- Markdown

COMPARISON_COLUMNS = (
    ("circuit", "Circuit", None),
    ("direction", "Direction", None),
    ("completed_pct", "Completed (%)", 1),
    ("expert_completed_pct", "Expert completed (%)", 1),
    ("speed_mps", "Speed (m/s)", 2),
    ("speed_vs_expert_pct", "Speed vs expert (%)", 1),
    ("deviation_mae_m", "Deviation MAE (m)", 3),
    ("expert_deviation_mae_m", "Expert deviation MAE (m)", 3),
    ("deviation_vs_expert", "Deviation ratio (brain / expert)", 2),
    ("verdict", "Verdict", None),
)
CONDITION_COLUMNS = (
    ("condition", "Condition", None),
    ("label", "Set", None),
    ("runs", "Runs", 0),
    ("completed_pct_min", "Completed (%, min)", 1),
    ("speed_vs_expert_pct_min", "Speed vs expert (%, min)", 1),
    ("deviation_mae_m_max", "Deviation MAE (m, max)", 3),
    ("deviation_vs_clear_max", "Deviation / own clear (max)", 2),
    ("verdict", "Verdict", None),
)


def _scan_table(results: list) -> str:
    columns = [("condition", "Condition", None)]
    columns += [(f"{level:g}", f"Level {level:g}", None) for level in SCAN_LEVELS]
    columns += [("first_failing_level", "First failing level", None), ("status", "Status", None)]
    rows = []
    for result in results:
        row = {"condition": result["condition"], "status": result["status"]}
        for entry in result["levels"]:
            row[f"{entry['level']:g}"] = entry["verdict"] or "not driven"
        level = result["first_failing_level"]
        row["first_failing_level"] = f"{level:g}" if level is not None else None
        rows.append(row)
    return metrics_table(rows, "markdown", columns)


def _goal_lines(goal: dict) -> list:
    count = f"{goal['passed']} of {goal['runs']} runs pass" if goal["runs"] else "no runs"
    lines = [f"- **{goal['verdict']}** {goal['goal']}: {goal['criterion']} ({count})"]
    lines += [f"  - {problem}" for problem in goal["problems"]]
    lines += [f"  - note: {note}" for note in goal["notes"]]
    return lines


def report_markdown(report: dict) -> str:
    """The report as Markdown: a table per part, the level scan, then PASS/FAIL per goal."""
    lines = [f"# Generalization: {report['brain']} against the expert {report['expert']}", ""]
    settings = report["settings"]
    if settings:
        lines += ["Settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()) + ".", ""]
    lines += [f"Note: {note}" for note in report["notes"]] + ([""] if report["notes"] else [])
    if report["unseen"] is not None:
        lines += ["## Unseen circuits (shared real tracks, generated evaluation circuits), clear", ""]
        lines += [metrics_table(report["unseen"], "markdown", COMPARISON_COLUMNS) if report["unseen"] else "No runs.\n"]
    if report["test"] is not None:
        lines += ["## Test circuits, clear", "", metrics_table(report["test"], "markdown", COMPARISON_COLUMNS)]
    if report["conditions"] is not None:
        lines += [
            f"## Conditions at level moderate ({CONDITION_LEVEL:g}), the brain on the test circuits both ways",
            "",
            "Speed against the expert's clear runs; deviation against the brain's own clear runs.",
            "",
            metrics_table(report["conditions"]["summary"], "markdown", CONDITION_COLUMNS),
        ]
    if report["level_scan"] is not None:
        lines += [
            "## Level scan: the level at which each condition first makes the brain fail",
            "",
            f"The conditions goal at each level in turn ({', '.join(f'{level:g}' for level in SCAN_LEVELS)}), "
            "up to the first level that misses it.",
            "",
            _scan_table(report["level_scan"]),
        ]
    lines += ["## Goals", ""]
    for goal in report["goals"]:
        lines += _goal_lines(goal)
    if report["level_scan"] is not None:
        first = [f"{result['condition']} {result['status']}" for result in report["level_scan"]]
        lines += [f"- level scan: {'; '.join(first)}"]
    return "\n".join(lines) + "\n"
