"""`pilotnet-brain sweep`: many runs (brains x circuits x directions x conditions x repeats) on Ray;
`pilotnet-brain generalization`: the held-out evaluation of a brain against the expert, as sweeps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pilotnet_brain.bench.closed_loop import launcher_run_fn, summarize, summary_table
from pilotnet_brain.cli.common import (
    choice_list,
    circuit_list,
    directions,
    existing_file,
    finite_float,
    non_empty_list,
    non_negative_int,
    output_dir,
    output_location_problem,
    parameter_type,
    positive_int,
)
from pilotnet_brain.config import CLOCK, SCALE, SIM_NODE
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.jsonio import write_json_atomic, write_text_atomic
from pilotnet_brain.sim.builtin_circuits import GENERATED_EVALUATION, SHARED_EVAL_TRACKS
from pilotnet_brain.sim.conditions import CONDITION_NAMES
from pilotnet_brain.sweep import generalization
from pilotnet_brain.sweep.report import write_sweep_outputs
from pilotnet_brain.sweep.spec import (
    ADDRESS_FORMS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_OUT,
    MODES,
    check_address,
    resolve_brains,
    sweep_spec,
)

#: The options that are settings of the SweepSpec (argparse dest == SweepSpec field == sweep file key).
SPEC_OPTIONS = (
    "brains",
    "circuits",
    "directions",
    "repeats",
    "conditions",
    "mode",
    "clock",
    "latency_ms",
    "timeout",
    "scale",
    "record",
    "workers",
    "address",
    "max_retries",
    "out",
)
RAY_MISSING = "needs Ray, the 'sweep' extra (pip install -e '.[sweep]')"


def cmd_sweep(args) -> int:
    spec = sweep_spec(args.file, {name: getattr(args, name) for name in SPEC_OPTIONS})
    problem = output_location_problem(spec.out, directory=True)  # an `out` of the sweep file: not checked yet
    if problem:
        raise ConfigError(f"out: {spec.out}: {problem}")
    try:
        from pilotnet_brain.sweep.engine import run_sweep  # noqa: PLC0415 (Ray: the 'sweep' extra)
    except ImportError as error:
        if error.name != "ray":
            raise
        print(f"pilotnet-brain sweep: error: {RAY_MISSING}", file=sys.stderr)
        return 2
    run_fn = None
    if spec.mode == "ros":
        try:
            run_fn = launcher_run_fn()
        except RuntimeError as error:
            print(f"pilotnet-brain sweep: error: mode ros: {error}", file=sys.stderr)
            return 2
    result = run_sweep(spec, progress=not args.quiet, fresh=args.fresh, run_fn=run_fn)
    out_dir = Path(spec.out)
    print(summary_table(summarize(result.rows)))
    written = write_sweep_outputs(result.rows, out_dir)
    print(
        f"{len(result.rows)} runs ({result.executed} run now, {result.skipped} already finished, {result.failed} "
        f"failed): {out_dir / 'sweep.json'}, per run {out_dir / 'runs'}/<config hash>/; "
        f"{', '.join(p.name for p in written)} in {out_dir}/"
    )
    return 1 if any(row.get("error") for row in result.rows) else 0


#: `pilotnet-brain generalization`: its sweeps' runs and outputs go to OUT/<GENERALIZATION_SWEEP_DIR>, its report
#: to OUT/<GENERALIZATION_REPORT>.md and .json.
GENERALIZATION_SWEEP_DIR = "sweep"
GENERALIZATION_REPORT = "generalization"
DEFAULT_EXPERT = "explicit"
DEFAULT_GENERALIZATION_LATENCY_MS = 2.0


def _shared_tracks(given: str | None) -> tuple:
    """(CSV paths, notes) of the shared real tracks: --shared-tracks DIR, else SHARED_EVAL_TRACKS where it
    exists (where it does not: no tracks, and a note saying so)."""
    if given is None and not SHARED_EVAL_TRACKS.is_dir():
        note = (
            f"shared real tracks: {SHARED_EVAL_TRACKS} not found, so the unseen part has the generated circuits "
            "only (give --shared-tracks DIR)"
        )
        return (), (note,)
    directory = Path(given) if given is not None else SHARED_EVAL_TRACKS
    if not directory.is_dir():
        raise ConfigError(f"--shared-tracks: {directory} is not a directory")
    tracks = tuple(sorted(directory.glob("*.csv")))
    if not tracks:
        raise ConfigError(f"--shared-tracks: {directory} holds no .csv track")
    return tracks, ()


def cmd_generalization(args) -> int:
    out_dir = Path(args.out)
    sweep_dir = out_dir / GENERALIZATION_SWEEP_DIR
    labels = {}
    for option, given in (("--brain", args.brain), ("--expert", args.expert)):
        try:
            (entry,) = resolve_brains([given])  # checked before anything runs
        except ValueError as error:  # ConfigError, ModelFileError, ...
            raise ConfigError(f"{option}: {error}") from None
        labels[option] = entry.name
    brain, expert = labels["--brain"], labels["--expert"]
    if brain == expert:
        raise ConfigError(f"--brain and --expert are both {brain!r}: the brain is compared with another")
    tracks, notes = _shared_tracks(args.shared_tracks) if "unseen" in args.parts else ((), ())
    generated = generalization.generated_circuits(args.generated) if "unseen" in args.parts else ()
    plan = generalization.make_plan(
        brain,
        expert,
        parts=args.parts,
        shared_tracks=tracks,
        generated=generated,
        generated_directions=args.generated_directions,
        conditions=args.conditions,
        level_scan=args.level_scan,
        notes=notes,
    )
    for note in notes:
        print(f"pilotnet-brain generalization: {note}", file=sys.stderr)
    shared = {
        "mode": "inprocess",
        "clock": "lockstep",
        "latency_ms": args.latency_ms,
        "timeout": args.timeout,
        "workers": args.workers,
        "address": args.address,
        "out": str(sweep_dir),
    }
    specs = [
        sweep_spec(options={**shared, **settings})
        for settings in generalization.sweep_settings(plan, args.brain, args.expert)
    ]
    try:
        from pilotnet_brain.sweep.engine import run_sweeps  # noqa: PLC0415 (Ray: the 'sweep' extra)
    except ImportError as error:
        if error.name != "ray":
            raise
        print(f"pilotnet-brain generalization: error: {RAY_MISSING}", file=sys.stderr)
        return 2
    rows = run_sweeps(specs, progress=not args.quiet).rows if specs else []
    done_rounds = set()
    while plan.level_scan and (scan_round := generalization.next_scan_round(rows, plan)) is not None:
        if scan_round in done_rounds:  # its runs were driven and still are not there: a bug, not a loop
            raise RuntimeError(f"level scan: the round {scan_round} left runs missing")
        done_rounds.add(scan_round)
        level, names = scan_round
        print(f"pilotnet-brain generalization: level scan at {level:g}: {', '.join(names)}", file=sys.stderr)
        specs.append(sweep_spec(options={**shared, **generalization.scan_settings(plan, args.brain, level, names)}))
        rows = run_sweeps(specs, progress=not args.quiet).rows
    settings = {
        "clock": "lockstep",
        "latency": f"{args.latency_ms:g} ms",
        "time-out": f"{args.timeout:g} s" if args.timeout else "the circuit's",
    }
    if "unseen" in args.parts:
        settings["shared tracks"] = f"{len(tracks)} ({', '.join(generalization.BOTH_DIRECTIONS)})"
        settings["generated circuits"] = f"{len(generated)} ({', '.join(args.generated_directions)})"
    report = generalization.generalization_report(rows, plan, settings)
    text = generalization.report_markdown(report)
    if rows:
        write_sweep_outputs(rows, sweep_dir)
    write_text_atomic(text, out_dir / f"{GENERALIZATION_REPORT}.md")
    write_json_atomic({**report, "runs": rows}, out_dir / f"{GENERALIZATION_REPORT}.json")
    print(text)
    print(
        f"{len(rows)} runs in {sweep_dir}/ (sweep.json, report.html, runs/<config hash>/); this report: "
        f"{out_dir / (GENERALIZATION_REPORT + '.md')}, {out_dir / (GENERALIZATION_REPORT + '.json')}"
    )
    return 0 if generalization.passed(report) else 1


def ray_address(text: str) -> str:
    """An argparse type: a Ray cluster address (auto, host:port or ray://host:port)."""
    try:
        return check_address(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--address: ")) from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommand to the `pilotnet-brain` parser. Every option defaults to None ("not
    given"): a sweep file may set it, and the SweepSpec's defaults apply last."""
    p = sub.add_parser(
        "sweep",
        help="many runs (brains x circuits x directions x conditions x repeats) in parallel on Ray",
        description="Every run is a Ray task on an embedded local Ray instance (default) or a cluster "
        "(--address); finished runs are kept in --out and skipped by a rerun.",
    )
    p.add_argument("--file", type=existing_file, help="sweep YAML (keys as the options, '_' for '-'); it wins")
    p.add_argument(
        "--brains", type=non_empty_list, help="brain presets (config/brains/<name>.yaml) or brain_node YAML files"
    )
    p.add_argument("--circuits", type=circuit_list, help="built-in circuit names or CSV paths (default: test set)")
    p.add_argument("--directions", type=directions, help="ccw, cw, ccw,cw or both (default: ccw)")
    p.add_argument("--repeats", type=positive_int, help="runs of each configuration (default 1)")
    p.add_argument(
        "--conditions",
        help="condition sets, separated by ';', each name=level comma separated (sim/conditions.py), e.g. "
        "'none;lighting=0.5,noise=moderate' (default: none)",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        help="inprocess: the embedded simulator in the worker (default); "
        "ros: the ROS 2 graph per run, on its own ROS_DOMAIN_ID",
    )
    p.add_argument("--clock", choices=CLOCK.choices, help=f"simulation clock (default {CLOCK.default})")
    p.add_argument(
        "--latency-ms",
        type=parameter_type(SIM_NODE["latency"], scale=1e-3),
        help="lockstep: fixed command latency in ms: reproducible runs (default: the brain's measured time)",
    )
    p.add_argument(
        "--timeout",
        type=parameter_type(SIM_NODE["timeout"]),
        help="simulated seconds per run (default 0: the circuit's time-out)",
    )
    p.add_argument("--scale", type=parameter_type(SCALE), help="scale of CSV circuits (default 1)")
    p.add_argument("--record", action="store_true", default=None, help="mode ros: a rosbag2 bag per run")
    p.add_argument("--workers", type=positive_int, help="runs at once (default: the cores, or the cluster's CPUs)")
    p.add_argument("--address", type=ray_address, help=f"join a running Ray cluster: {ADDRESS_FORMS}")
    p.add_argument(
        "--max-retries",
        type=non_negative_int,
        help=f"times a run whose worker process died is run again (default {DEFAULT_MAX_RETRIES})",
    )
    p.add_argument("--out", type=output_dir, help=f"results directory (default {DEFAULT_OUT})")
    p.add_argument("--fresh", action="store_true", help="run again the runs already finished in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "generalization",
        help="held-out evaluation: a brain against the expert on unseen circuits, the test circuits and under "
        "each condition; tables and PASS/FAIL per goal",
        description="Sweeps (lock-step, fixed latency, in-process) of the brain and the expert: the shared real "
        "tracks and generated circuits of the evaluation seeds (unseen), the test circuits clear (test), each "
        "condition at level moderate on the test circuits (conditions), optionally a level scan. Finished runs "
        "are kept in OUT/sweep and skipped by a rerun. Exit code 1 when a goal fails or cannot be judged.",
    )
    p.add_argument(
        "--brain", required=True, help="the brain to evaluate: a preset (config/brains/<name>.yaml) or brain_node YAML"
    )
    p.add_argument("--expert", default=DEFAULT_EXPERT, help="the brain it is compared with (default %(default)s)")
    p.add_argument(
        "--shared-tracks",
        help=f"directory of the shared real tracks (*.csv, driven at scale 1 both ways; default {SHARED_EVAL_TRACKS} "
        "where it exists, else that part is skipped, saying so)",
    )
    p.add_argument(
        "--generated",
        type=non_negative_int,
        default=len(GENERATED_EVALUATION),
        help="generated circuits of the evaluation seeds, the first N (default %(default)s: the "
        "generated-evaluation set; 0: none)",
    )
    p.add_argument(
        "--generated-directions",
        type=directions,
        default=list(generalization.BOTH_DIRECTIONS),
        help="directions of the generated circuits: ccw, cw or both (default both)",
    )
    p.add_argument(
        "--parts",
        type=choice_list(generalization.PARTS, "part(s)"),
        default=list(generalization.PARTS),
        help=f"comma separated, of {', '.join(generalization.PARTS)} (default: all)",
    )
    p.add_argument(
        "--conditions",
        type=choice_list(CONDITION_NAMES, "condition(s)"),
        default=list(CONDITION_NAMES),
        help="the conditions of the conditions part and the level scan, comma separated (default: all)",
    )
    p.add_argument(
        "--level-scan",
        action="store_true",
        help="also drive each condition at "
        f"{', '.join(f'{level:g}' for level in generalization.SCAN_LEVELS)} on the test circuits, up to the "
        "first level that fails (expensive)",
    )
    p.add_argument("--workers", type=positive_int, help="runs at once (default: the cores, or the cluster's CPUs)")
    p.add_argument("--address", type=ray_address, help=f"join a running Ray cluster: {ADDRESS_FORMS}")
    p.add_argument(
        "--latency-ms",
        type=finite_float(min=0.0),
        default=DEFAULT_GENERALIZATION_LATENCY_MS,
        help="fixed command latency in ms (reproducible runs; default %(default)g)",
    )
    p.add_argument(
        "--timeout",
        type=parameter_type(SIM_NODE["timeout"]),
        default=0.0,
        help="simulated s per run (default 0: the circuit's time-out; shorter runs are no laps: quick checks only)",
    )
    p.add_argument("--out", type=output_dir, required=True, help="results directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generalization)
