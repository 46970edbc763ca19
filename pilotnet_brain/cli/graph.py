"""Commands on the ROS 2 graph and its rosbag2 bags: launch, benchmark, analyze, node-benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pilotnet_brain.bags.score import analyze_bags
from pilotnet_brain.bench.closed_loop import BENCHMARK_WORKERS, summarize, summary_table, write_outputs
from pilotnet_brain.bench.graph import format_table, print_progress, run_graph_benchmark, summarize_starts, write_result
from pilotnet_brain.brains import BRAIN_NAMES
from pilotnet_brain.cli.common import (
    CONDITION_HELP,
    DIRECTIONS,
    choice_list,
    circuit_list,
    circuit_name,
    condition_set,
    directions,
    existing_dir,
    finite_float,
    non_empty_list,
    output_dir,
    output_file,
    parameter_type,
    positive_int,
)
from pilotnet_brain.cli.sweep import RAY_MISSING
from pilotnet_brain.config import BRAIN_LAUNCH_ARGUMENTS, CLOCK, SCALE, SIM_NODE
from pilotnet_brain.evaluation.drive import write_summary
from pilotnet_brain.evaluation.metrics import metrics_table
from pilotnet_brain.jsonio import dumps_strict
from pilotnet_brain.ros.environment import TRANSPORTS
from pilotnet_brain.ros.launcher import LaunchError, run_brain, run_simulation
from pilotnet_brain.sim.builtin_circuits import TEST_CIRCUITS


def cmd_launch(args) -> int:

    if args.what == "brain":
        return run_brain(
            args.brain_config,
            namespace=args.namespace,
            camera_topic=args.camera_topic,
            cmd_vel_topic=args.cmd_vel_topic,
            use_sim_time=args.use_sim_time,
            out_dir=args.out,
        )
    try:
        result = run_simulation(
            circuit=args.circuit,
            direction=args.direction,
            brain_config=args.brain_config,
            clock=args.clock,
            record=args.record,
            out_dir=args.out,
            timeout=args.timeout,
            scale=args.scale,
            use_sim_time=args.use_sim_time,
            conditions=args.condition.label,
            seed=args.seed,
            echo=sys.stderr,  # the nodes' output, [name]-prefixed, and how to attach a tool
        )
    except LaunchError as error:
        print(f"pilotnet-brain launch: error: {error}", file=sys.stderr)
        return 1

    print(metrics_table([result["metrics"]]))
    print(
        f"metrics: {result['metrics_path']}  logs: {result['logs']}"
        + (f"  bag: {result['bag_path']}" if result["bag_path"] else "")
    )
    return 0 if (result["metrics"].get("completed_pct") or 0) >= 100.0 else 1


def cmd_benchmark(args) -> int:

    out_dir = Path(args.out)
    try:
        from pilotnet_brain.sweep.benchmark import run_benchmark  # noqa: PLC0415 (Ray: the 'sweep' extra)

        rows = run_benchmark(
            args.brains,
            args.circuits,
            args.directions,
            clock=args.clock,
            out_dir=out_dir,
            record=args.record,
            timeout=args.timeout,
            progress=not args.quiet,
            workers=args.workers,
            fresh=args.fresh,
        )
    except ImportError as error:
        if error.name != "ray":
            raise
        print(f"pilotnet-brain benchmark: error: {RAY_MISSING}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"pilotnet-brain benchmark: error: {error}", file=sys.stderr)
        return 2
    print(summary_table(summarize(rows)))
    written = write_outputs(rows, out_dir)
    print(f"tables (Markdown, CSV), JSON and chart in {out_dir}/ ({', '.join(p.name for p in written)})")
    return 1 if any(r.get("error") for r in rows) else 0


def cmd_graph_benchmark(args) -> int:
    brains, transports = args.brains, args.transports
    progress = None if args.quiet else print_progress
    stall_logs = Path(args.out).with_name(Path(args.out).stem + "_stall_logs")  # next to the JSON
    rows = run_graph_benchmark(brains, transports, args.starts, args.sim_seconds, log=progress, stall_logs=stall_logs)
    print(format_table(summarize_starts(rows)))
    settings = {"brains": brains, "transports": transports, "starts": args.starts, "sim_seconds": args.sim_seconds}
    print(f"every start and the summary: {write_result(rows, settings, args.out)}")
    return 1 if any(r["stall"] for r in rows) else 0


def cmd_analyze(args) -> int:

    out_dir = Path(args.out) if args.out else None
    rows = analyze_bags(args.bags, out_dir)
    if args.json:
        print(dumps_strict(rows[0] if len(rows) == 1 else rows))
    else:
        print(metrics_table(rows, fmt="markdown"))
    if out_dir is not None:
        write_summary(rows, out_dir)
        if not args.json:
            print(f"\nper-run JSON, trajectory and speed/command plots, summary table and chart in {out_dir}/")
    return 0


def cmd_node_benchmark(args) -> int:
    from pilotnet_brain.ros.brain_node import benchmark_overhead  # noqa: PLC0415  (optional: ROS messages)

    print(
        "| brain | decode (ms) | preprocess (ms) | inference (ms) | iteration (ms) | overhead beyond inference "
        "(ms, p50 / p95) | iteration frequency (Hz) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for brain in args.brain:
        extra = {"threads": 1} if brain == "pilotnet" else {}
        r = benchmark_overhead(brain, frames=args.frames, **extra)
        print(
            f"| {brain} | {r['decode_ms']:.3f} | {r['preprocess_ms']:.3f} | {r['inference_ms']:.3f} | "
            f"{r['iteration_ms']:.3f} | {r['overhead_ms']:.3f} / {r['overhead_p95_ms']:.3f} | "
            f"{r['iteration_frequency_hz']:.0f} |"
        )
    print(
        "\noverhead = decode + preprocessing outside the forward pass + command clamp + publish "
        "(640x480 rgb8, real node and publishers, no DDS transport); goal <= 0.3 ms"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the `pilotnet-brain` parser."""
    p = sub.add_parser("launch", help="start the ROS 2 graph of launch/<what>.launch.py (no ros2 launch needed)")
    p.add_argument(
        "what",
        choices=("simulation", "brain"),
        help="simulation: sim + brain + metrics nodes, one run; brain: brain_node alone (Gazebo)",
    )
    p.add_argument(
        "--brain-config",
        default="explicit",
        help="brain_node parameters YAML, or a name in config/brains (explicit, pilotnet_fp32)",
    )
    p.add_argument("--circuit", type=circuit_name, default="simple_circuit", help="built-in circuit name or CSV path")
    p.add_argument("--direction", choices=DIRECTIONS, default="ccw")
    p.add_argument("--scale", type=parameter_type(SCALE), default=1.0, help="scale factor for CSV circuits")
    p.add_argument("--clock", choices=CLOCK.choices, help="default: config/simulation.yaml")
    p.add_argument(
        "--timeout",
        type=parameter_type(SIM_NODE["timeout"]),
        help="simulated seconds (default, or 0: the circuit's time-out)",
    )
    p.add_argument("--record", action="store_true", help="also record a rosbag2 bag (bag_recorder node)")
    p.add_argument(
        "--condition",
        type=condition_set,
        default=condition_set(SIM_NODE["conditions"].default),
        help=f"simulation: {CONDITION_HELP} (launch argument conditions; default none)",
    )
    p.add_argument(
        "--seed",
        type=parameter_type(SIM_NODE["seed"]),
        default=SIM_NODE["seed"].default,
        help="simulation: seeds the simulator's conditions: noise, shadows, latency spikes (default %(default)s)",
    )
    p.add_argument(
        "--out", type=output_dir, default="runs/ros", help="directory for the metrics JSON, summary.csv, logs, bag"
    )
    p.add_argument(
        "--use-sim-time", action="store_true", help="every node's clock follows /clock (Gazebo's, or sim_node's)"
    )
    brain_arguments = {a.name: a for a in BRAIN_LAUNCH_ARGUMENTS}
    for name in ("namespace", "camera_topic", "cmd_vel_topic"):  # brain.launch.py's arguments
        argument = brain_arguments[name]
        p.add_argument(
            "--" + name.replace("_", "-"),
            default=argument.default,
            help=f"brain: {argument.doc} (default: %(default)r)",
        )
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("benchmark", help="every brain preset on every circuit through the ROS 2 graph")
    p.add_argument(
        "--brains",
        type=non_empty_list,
        help="brain presets (config/brains/<name>.yaml), comma separated (default: all)",
    )
    p.add_argument(
        "--circuits",
        type=circuit_list,
        default=list(TEST_CIRCUITS),
        help="built-in circuit name(s) or CSV path(s), comma separated (default: the test circuits)",
    )
    p.add_argument("--directions", type=directions, default=["ccw"], help="ccw, cw, ccw,cw or both")
    p.add_argument("--clock", choices=CLOCK.choices, help="simulation clock (default from config)")
    p.add_argument(
        "--timeout",
        type=parameter_type(SIM_NODE["timeout"]),
        help="simulated seconds before a run is stopped (0: the circuit's time-out)",
    )
    p.add_argument(
        "--out", type=output_dir, default="runs/benchmark", help="directory for tables, JSON, chart and runs"
    )
    p.add_argument("--record", action="store_true", help="record each run as a rosbag2 bag (MCAP)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=BENCHMARK_WORKERS,
        help="runs at once, each on a core of its own (default 1: timings comparable between runs)",
    )
    p.add_argument("--fresh", action="store_true", help="run again the runs already finished in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("graph-benchmark", help="start the ROS 2 graph fresh N times: discovery, stalls, latency")
    p.add_argument("--starts", type=positive_int, default=50, help="fresh starts per brain and transports (default 50)")
    p.add_argument(
        "--brains", type=non_empty_list, default=["explicit"], help="brain presets, comma separated (default: explicit)"
    )
    p.add_argument(
        "--transports",
        type=choice_list(TRANSPORTS, "transport(s)"),
        default=["profile"],
        help="comma separated: profile (config/fastdds.xml), default, large_data, udp",
    )
    p.add_argument(
        "--sim-seconds",
        type=finite_float(min=0.0, min_exclusive=True),
        default=2.0,
        help="simulated seconds of each lock-step run",
    )
    p.add_argument(
        "--out",
        type=output_file,
        default="runs/graph_benchmark.json",
        help="JSON with every start and the summary",
    )
    p.add_argument("--quiet", action="store_true", help="no line per start")
    p.set_defaults(func=cmd_graph_benchmark)

    p = sub.add_parser("analyze", help="recompute a run's metrics from its rosbag2 bag(s) and plot them")
    p.add_argument(
        "bags", type=existing_dir, nargs="+", help="bag directories (with metadata.yaml) recorded by bag_recorder"
    )
    p.add_argument(
        "--out", type=output_dir, help="directory for per-run JSON, trajectory and time-series plots, summary"
    )
    p.add_argument("--json", action="store_true", help="print only the metrics JSON on stdout")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("node-benchmark", help="brain_node's per-frame overhead beyond inference (needs rclpy)")
    p.add_argument(
        "--brain",
        type=choice_list(BRAIN_NAMES, "brain(s)"),
        default=["explicit", "pilotnet"],
        help="comma-separated brains",
    )
    p.add_argument("--frames", type=positive_int, default=300)
    p.set_defaults(func=cmd_node_benchmark)
