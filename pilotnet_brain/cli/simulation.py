"""Commands on the embedded simulator: circuits, presets, drive, record, sim-benchmark."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from tqdm import tqdm

from pilotnet_brain.bench.simulator import simulator_benchmark
from pilotnet_brain.brains import BRAIN_NAMES, make_brain
from pilotnet_brain.brains.pilotnet import PilotNetBrain
from pilotnet_brain.cli.common import (
    CONDITION_HELP,
    DIRECTIONS,
    add_sim_options,
    choice_list,
    circuit_list,
    circuit_name,
    condition_set,
    directions,
    existing_file,
    finite_float,
    non_negative_int,
    output_dir,
    parameter_type,
    positive_int,
    sim_settings_from_args,
)
from pilotnet_brain.config import BRAIN_NODE, SCALE, SIM_NODE
from pilotnet_brain.data.recording import PerturbationSettings, record_dataset
from pilotnet_brain.evaluation.drive import drive, write_summary
from pilotnet_brain.evaluation.metrics import metrics_table
from pilotnet_brain.jsonio import dumps_strict
from pilotnet_brain.runtime.catalog import BACKEND_NAMES, preset_names
from pilotnet_brain.sim.builtin_circuits import CIRCUIT_SETS, TRAINING_CIRCUITS
from pilotnet_brain.sim.circuits import describe_circuits, load_circuit
from pilotnet_brain.sim.conditions import Conditions
from pilotnet_brain.sim.world import BEHAVIOR_METRICS_TIMEOUTS_S


def cmd_circuits(args) -> int:

    names = CIRCUIT_SETS[args.set]
    if args.names:
        print(",".join(names))  # the form --circuits takes (the Makefile reads it)
        return 0
    rows = describe_circuits(names)
    print(
        f"{'circuit':16s} {'length (m)':>10s} {'min radius (m)':>15s} {'road width (m)':>15s} {'BM time-out (s)':>16s}"
    )
    for r in rows:
        print(
            f"{r['name']:16s} {r['length_m']:10.0f} {r['min_radius_m']:15.1f} {2 * r['half_width_m']:15.1f} "
            f"{BEHAVIOR_METRICS_TIMEOUTS_S.get(r['name'], float('nan')):16.0f}"
        )
    print("\nAny TUM-format CSV (x_m,y_m,w_tr_right_m,w_tr_left_m) is accepted as --circuit PATH [--scale S].")
    return 0


def cmd_presets(args) -> int:

    print(",".join(preset_names(cpu_only=args.cpu)))  # the form `benchmark --brains` takes (the Makefile reads it)
    return 0


def cmd_drive(args) -> int:

    settings = sim_settings_from_args(
        args, args.circuit, args.direction, args.scale, default_circuits=["simple_circuit"], default_directions=["ccw"]
    )
    out_dir = Path(args.out) if args.out else None
    if (args.model or args.device) and "pilotnet" not in args.brain:
        raise ValueError("--model/--device apply to the pilotnet brain")
    pilotnet_options = {"model_path": args.model, "backend": args.backend, "threads": args.threads}
    if args.device:
        pilotnet_options["device"] = args.device
    # Everything that can be refused is loaded before the first run: circuits, then brains.
    circuits = [
        load_circuit(name, direction=direction, scale=settings.scale)
        for name in settings.circuits
        for direction in settings.directions
    ]
    brains = [make_brain(name, **(pilotnet_options if name == "pilotnet" else {})) for name in args.brain]
    rows, failed = [], []
    for brain in brains:
        for circuit in circuits:
            bar = tqdm(
                total=100,
                desc=f"{brain.name} {circuit.name} {circuit.direction}",
                unit="%",
                leave=False,
                file=sys.stderr,
                disable=True if args.quiet else None,
            )

            def progress(fraction, bar=bar):
                bar.n = min(100, int(fraction * 100))
                bar.refresh()

            result = drive(circuit, circuit.direction, brain, settings.config, out_dir=out_dir, progress=progress)
            bar.close()
            rows.append(result.metrics)
            if result.log.brain_error:
                failed.append(
                    f"{brain.name} on {circuit.name} {circuit.direction}: run ended by brain_error: "
                    f"{result.log.brain_error}"
                )
    if args.json:
        print(dumps_strict(rows[0] if len(rows) == 1 else rows))
    else:
        print(metrics_table(rows, fmt="markdown"))
    if out_dir is not None:
        written = write_summary(rows, out_dir)
        if not args.json:
            print(
                f"\nper-run JSON and trajectory plots, summary table and chart in {out_dir}/ "
                f"({', '.join(p.name for p in written)})"
            )
    if failed:
        print(f"pilotnet-brain drive: error: {'; '.join(failed)}", file=sys.stderr)
        return 2
    return 0 if all(r["completed_pct"] >= 100.0 for r in rows) else 1


def cmd_record(args) -> int:
    settings = sim_settings_from_args(
        args, args.circuits, args.direction, None, default_circuits=TRAINING_CIRCUITS, default_directions=DIRECTIONS
    )
    perturbation = PerturbationSettings(rate_per_s=args.perturbation_rate)
    if args.randomize_conditions and settings.config.conditions:
        raise ValueError(
            f"--randomize-conditions draws each lap's conditions: not with --condition or a config's conditions "
            f"({settings.config.conditions.label})"
        )
    if args.model and args.driver != "pilotnet":
        raise ValueError("--model goes with --driver pilotnet")
    driver = driver_description = None
    if args.driver == "pilotnet":
        driver = PilotNetBrain(args.model)
        driver_description = {
            "brain": "pilotnet",
            "model": driver.model_path.name,
            "model_sha256": hashlib.sha256(driver.model_path.read_bytes()).hexdigest(),
        }
    t0 = time.perf_counter()
    summary = record_dataset(
        Path(args.out),
        settings.circuits,
        settings.directions,
        seed=args.seed,
        laps=args.laps,
        frame_stride=args.frame_stride,
        perturbation=perturbation,
        lighting_variation=args.lighting_variation,
        config=settings.config,
        driver=driver,
        driver_description=driver_description,
        scale=settings.scale,
        held_out=args.held_out,
        randomize_conditions=args.randomize_conditions,
    )
    for s in summary["sequences"]:
        print(
            f"{s['name']:28s} {s['frames']:7d} frames {s['images_mb']:8.1f} MB  laps: {', '.join(s['lap_end_reasons'])}"
        )
    print(
        f"{'total':28s} {summary['frames']:7d} frames {summary['images_mb']:8.1f} MB "
        f"in {time.perf_counter() - t0:.0f} s -> {args.out}"
    )
    return 0


def cmd_sim_benchmark(args) -> int:

    print(simulator_benchmark(frames=args.frames, circuit=args.circuit, conditions=args.condition))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the `pilotnet-brain` parser."""
    p = sub.add_parser("circuits", help="list the built-in (or generated) circuits with their lengths")
    p.add_argument("--set", choices=tuple(CIRCUIT_SETS), default="all", help="which circuits (default: all built-in)")
    p.add_argument("--names", action="store_true", help="print only the names, comma separated")
    p.set_defaults(func=cmd_circuits)

    p = sub.add_parser("presets", help="list the brain presets (config/brains/<name>.yaml), comma separated")
    p.add_argument("--cpu", action="store_true", help="only the presets that run without a GPU")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("drive", help="drive a brain on circuits of the embedded simulator and score it")
    p.add_argument(
        "--brain",
        type=choice_list(BRAIN_NAMES, "brain(s)"),
        default=["explicit"],
        help="brain name(s), comma separated: explicit, pilotnet",
    )
    p.add_argument("--model", type=existing_file, help="pilotnet: model file (default: the shipped weights)")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="torch_fp32", help="pilotnet: inference backend")
    p.add_argument("--device", choices=BRAIN_NODE["device"].choices, help="pilotnet: device for torch backends")
    p.add_argument(
        "--threads",
        type=parameter_type(BRAIN_NODE["threads"]),
        default=1,
        help="pilotnet: inference threads (default 1; 0: the runtime's default)",
    )
    p.add_argument(
        "--circuit",
        type=circuit_list,
        help="built-in circuit name(s), gen:SEED or CSV path(s), comma separated (default: simple_circuit)",
    )
    p.add_argument("--direction", type=directions, help="ccw, cw, ccw,cw or both (default: ccw)")
    p.add_argument("--scale", type=parameter_type(SCALE), help="scale factor for CSV circuits (default 1)")
    p.add_argument("--out", type=output_dir, help="directory for per-run JSON, trajectory plots and the summary table")
    p.add_argument("--json", action="store_true", help="print only the metrics JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--seed",
        type=parameter_type(SIM_NODE["seed"]),
        help="seeds the simulator's conditions: noise, shadows, latency spikes (default from config: 0)",
    )
    add_sim_options(p)
    p.set_defaults(func=cmd_drive)

    p = sub.add_parser("record", help="record a driving dataset labelled by the explicit brain")
    p.add_argument(
        "--circuits",
        type=circuit_list,
        help=f"comma-separated circuits (default: {','.join(TRAINING_CIRCUITS)}); held-out ones only with --held-out",
    )
    p.add_argument(
        "--held-out",
        action="store_true",
        help="test data for offline evaluation: allows the held-out circuits (test set, evaluation seeds, shared "
        "real tracks) and marks the dataset so that train and optimize refuse it",
    )
    p.add_argument("--direction", type=directions, help="ccw, cw, ccw,cw or both (default: both)")
    p.add_argument("--out", type=output_dir, required=True, help="dataset directory")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--laps", type=positive_int, default=1, help="laps per circuit and direction")
    p.add_argument("--frame-stride", type=positive_int, default=1, help="keep every N-th camera frame")
    p.add_argument(
        "--perturbation-rate",
        type=finite_float(min=0.0),
        default=0.15,
        help="steering perturbations per simulated second (0 = none)",
    )
    p.add_argument(
        "--lighting-variation",
        type=finite_float(min=0.0, max=1.0, max_exclusive=True),
        default=0.0,
        help="per-lap brightness varies by +- this fraction",
    )
    p.add_argument(
        "--randomize-conditions",
        type=finite_float(min=0.0, max=1.0),
        default=0.0,
        metavar="MAX_LEVEL",
        help="domain randomisation: each lap draws its own conditions from the seed, each rendering condition on "
        "with probability 1/2 at a level up to MAX_LEVEL (0 = off; not with --condition)",
    )
    p.add_argument(
        "--driver",
        choices=("explicit", "pilotnet"),
        default="explicit",
        help="who drives: the expert, or PilotNet while the expert labels every frame (DAgger)",
    )
    p.add_argument(
        "--model", type=existing_file, help="with --driver pilotnet: its weights (default: the shipped model)"
    )
    add_sim_options(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("sim-benchmark", help="render time per frame and lock-step speed-up over real time")
    p.add_argument("--frames", type=positive_int, default=500, help="frames to time the renderer on")
    p.add_argument("--circuit", type=circuit_name, default="montreal", help="circuit for the lock-step lap")
    p.add_argument("--condition", type=condition_set, default=Conditions(), help=CONDITION_HELP + " (default none)")
    p.set_defaults(func=cmd_sim_benchmark)
