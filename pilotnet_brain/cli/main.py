"""`pilotnet-brain`: one subcommand per job."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pilotnet_brain.sim.builtin_circuits import CIRCUIT_SETS, TEST_CIRCUITS, TRAINING_CIRCUITS


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _directions(value: str) -> list[str]:
    dirs = ["ccw", "cw"] if value == "both" else _split(value)
    bad = [d for d in dirs if d not in ("ccw", "cw")]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown direction(s) {', '.join(bad)}; use ccw, cw, or both")
    return dirs


def _add_sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="ROS 2 parameters YAML for the simulator (default: config/simulation.yaml)")
    p.add_argument("--clock", choices=("lockstep", "realtime"), help="simulation clock (default from config)")
    p.add_argument("--camera-rate", type=float, help="camera frames per second")
    p.add_argument(
        "--latency-ms",
        type=float,
        help="lockstep: fixed command latency in ms (default: the brain's measured time per frame)",
    )
    p.add_argument("--timeout", type=float, help="simulated seconds before a run is stopped")


def _sim_config(args):
    """SimConfig from the --config file (sim_node's parameters) and the options, checked by config.SIM_NODE."""
    from pilotnet_brain.config import SIM_NODE
    from pilotnet_brain.resources import config_path
    from pilotnet_brain.ros.params import load_node_parameters
    from pilotnet_brain.sim.settings import sim_config_from_parameters

    params = load_node_parameters(args.config or config_path("simulation.yaml"), SIM_NODE)
    options = {"clock": args.clock, "camera_rate": args.camera_rate, "timeout": args.timeout}
    if args.latency_ms is not None:
        options["latency"] = args.latency_ms / 1000.0
    params.update({name: value for name, value in options.items() if value is not None})
    return sim_config_from_parameters(params, "simulator settings")


# --- circuits ------------------------------------------------------------------------------------
def cmd_circuits(args) -> int:
    from pilotnet_brain.sim.circuits import describe_circuits
    from pilotnet_brain.sim.world import BEHAVIOR_METRICS_TIMEOUTS_S

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


# --- presets -------------------------------------------------------------------------------------
def cmd_presets(args) -> int:
    from pilotnet_brain.runtime.catalog import preset_names

    print(",".join(preset_names(cpu_only=args.cpu)))  # the form `benchmark --brains` takes (the Makefile reads it)
    return 0


# --- drive ---------------------------------------------------------------------------------------
def cmd_drive(args) -> int:
    from tqdm import tqdm

    from pilotnet_brain.brains import make_brain
    from pilotnet_brain.evaluation.drive import drive, write_summary
    from pilotnet_brain.evaluation.metrics import metrics_table

    config = _sim_config(args)
    circuits = _split(args.circuit)
    out_dir = Path(args.out) if args.out else None
    rows = []
    brains = _split(args.brain)
    if (args.model or args.device) and "pilotnet" not in brains:
        raise ValueError("--model/--device apply to the pilotnet brain")
    pilotnet_options = {"model_path": args.model, "backend": args.backend, "threads": args.threads}
    if args.device:
        pilotnet_options["device"] = args.device
    runs = [(b, c, d) for b in brains for c in circuits for d in args.direction]
    for brain_name, circuit, direction in runs:
        brain = make_brain(brain_name, **(pilotnet_options if brain_name == "pilotnet" else {}))
        bar = tqdm(
            total=100,
            desc=f"{brain_name} {Path(circuit).stem} {direction}",
            unit="%",
            leave=False,
            file=sys.stderr,
            disable=True if args.quiet else None,
        )

        def progress(fraction, bar=bar):
            bar.n = min(100, int(fraction * 100))
            bar.refresh()

        result = drive(circuit, direction, brain, config, scale=args.scale, out_dir=out_dir, progress=progress)
        bar.close()
        rows.append(result.metrics)
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        print(metrics_table(rows, fmt="markdown"))
    if out_dir is not None:
        written = write_summary(rows, out_dir)
        if not args.json:
            print(
                f"\nper-run JSON and trajectory plots, summary table and chart in {out_dir}/ "
                f"({', '.join(p.name for p in written)})"
            )
    return 0 if all(r["completed_pct"] >= 100.0 for r in rows) else 1


# --- record --------------------------------------------------------------------------------------
def cmd_record(args) -> int:
    from pilotnet_brain.data.recording import PerturbationSettings, record_dataset

    config = _sim_config(args)
    perturbation = PerturbationSettings(rate_per_s=args.perturbation_rate)
    driver = driver_description = None
    if args.driver == "pilotnet":
        import hashlib

        from pilotnet_brain.brains.pilotnet import PilotNetBrain

        driver = PilotNetBrain(args.model)
        driver_description = {
            "brain": "pilotnet",
            "model": driver.model_path.name,
            "model_sha256": hashlib.sha256(driver.model_path.read_bytes()).hexdigest(),
        }
    elif args.model:
        raise SystemExit("error: --model goes with --driver pilotnet")
    t0 = time.perf_counter()
    summary = record_dataset(
        Path(args.out),
        _split(args.circuits),
        args.direction,
        seed=args.seed,
        laps=args.laps,
        frame_stride=args.frame_stride,
        perturbation=perturbation,
        lighting_variation=args.lighting_variation,
        config=config,
        driver=driver,
        driver_description=driver_description,
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


# --- train / evaluate ---------------------------------------------------------------------------
def cmd_train(args) -> int:
    from pilotnet_brain.train.trainer import TrainConfig, train_from_directory

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        val_fraction=args.val_fraction,
        augment=not args.no_augment,
        threads=args.threads,
        samples_per_epoch=args.samples_per_epoch,
        w_loss_weight=args.w_loss_weight,
    )
    out = Path(args.out)
    summary = train_from_directory([Path(d) for d in _split(args.data)], out, config)
    print(
        f"best validation MSE {summary['best_val_mse']:.5f} at epoch {summary['best_epoch']}; "
        f"{summary['train_frames']} training / {summary['val_frames']} validation frames; "
        f"{summary['train_seconds']:.0f} s -> {out} (+ {out.stem}.json, {out.stem}_loss.png)"
    )
    return 0


def cmd_evaluate(args) -> int:
    from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL
    from pilotnet_brain.data.frames import load_frames
    from pilotnet_brain.evaluation.offline import evaluate, format_table
    from pilotnet_brain.runtime.registry import make_backend

    backend = make_backend(args.backend, Path(args.model) if args.model else SHIPPED_MODEL)
    frames = load_frames(Path(args.data))
    results = evaluate(backend, frames, Path(args.out), name=f"offline_eval_{backend.name}")
    print(f"{backend.name} ({backend.path.name}) on {args.data}:\n")
    print(format_table(results))
    print(f"\nJSON and predicted-vs-true plot in {args.out}/")
    return 0


# --- optimize / offline-benchmark ---------------------------------------------------------------
def cmd_optimize(args) -> int:
    from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL
    from pilotnet_brain.data.calibration import DEFAULT_CALIBRATION_SIZE, OptimizeData
    from pilotnet_brain.data.frames import load_frames
    from pilotnet_brain.export.build import format_results, optimize, parse_methods

    methods = parse_methods(args.methods)
    data = OptimizeData.from_frames(
        load_frames(Path(args.data)), args.calibration_size or DEFAULT_CALIBRATION_SIZE, seed=args.seed
    )
    results = optimize(Path(args.model) if args.model else SHIPPED_MODEL, Path(args.out), methods, data)
    print()
    print(format_results(results))
    return 0 if all(r.status != "failed" for r in results) else 1


def cmd_offline_benchmark(args) -> int:
    from tqdm import tqdm

    from pilotnet_brain.bench.offline import format_table, observations, run_benchmark

    methods = _split(args.methods) if args.methods else None
    bar = tqdm(total=None, desc="offline benchmark", unit="variant", file=sys.stderr)

    def progress(i, n, name):
        bar.total = n
        bar.n = i
        bar.set_postfix_str(name)
        bar.refresh()

    rows = run_benchmark(Path(args.models), Path(args.data), Path(args.out), methods, args.repeats, progress)
    bar.close()
    print(format_table(rows))
    print()
    print(observations(rows))
    print(f"\nMarkdown, CSV, JSON and a latency/accuracy scatter in {args.out}/")
    return 0


# --- node-benchmark ------------------------------------------------------------------------------
def cmd_node_benchmark(args) -> int:
    from pilotnet_brain.ros.brain_node import benchmark_overhead

    print(
        "| brain | decode (ms) | preprocess (ms) | inference (ms) | iteration (ms) | overhead beyond inference "
        "(ms, p50 / p95) | iteration frequency (Hz) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for brain in _split(args.brain):
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


# --- gpu-benchmark -------------------------------------------------------------------------------
def cmd_gpu_benchmark(args) -> int:
    from pilotnet_brain.bench.gpu import gpu_table, run_gpu_benchmark
    from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL

    rows = run_gpu_benchmark(Path(args.model) if args.model else SHIPPED_MODEL, repeats=args.repeats)
    import torch

    print(gpu_table(rows, torch.cuda.get_device_name(0)))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


# --- sim-benchmark -------------------------------------------------------------------------------
def cmd_sim_benchmark(args) -> int:
    from pilotnet_brain.bench.simulator import simulator_benchmark

    print(simulator_benchmark(frames=args.frames, circuit=args.circuit))
    return 0


# --- analyze / benchmark (rosbag2 + the ROS 2 graph) ---------------------------------------------
def cmd_analyze(args) -> int:
    from pilotnet_brain.bags.score import analyze_bags
    from pilotnet_brain.evaluation.metrics import metrics_table

    out_dir = Path(args.out) if args.out else None
    rows = analyze_bags(args.bags, out_dir)
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        print(metrics_table(rows, fmt="markdown"))
    if out_dir is not None:
        from pilotnet_brain.evaluation.drive import write_summary

        write_summary(rows, out_dir)
        if not args.json:
            print(f"\nper-run JSON, trajectory and speed/command plots, summary table and chart in {out_dir}/")
    return 0


def cmd_benchmark(args) -> int:
    from pilotnet_brain.bench.closed_loop import run_benchmark, summarize, summary_table, write_outputs

    out_dir = Path(args.out)
    try:
        rows = run_benchmark(
            _split(args.brains) if args.brains else None,
            _split(args.circuits),
            args.directions,
            clock=args.clock,
            out_dir=out_dir,
            record=args.record,
            timeout=args.timeout,
            progress=not args.quiet,
        )
    except RuntimeError as error:
        print(f"pilotnet-brain benchmark: error: {error}", file=sys.stderr)
        return 2
    print(summary_table(summarize(rows)))
    written = write_outputs(rows, out_dir)
    print(f"tables (Markdown, CSV), JSON and chart in {out_dir}/ ({', '.join(p.name for p in written)})")
    return 1 if any(r.get("error") for r in rows) else 0


# --- launch (the ROS 2 graph without `ros2 launch`) ------------------------------------------------
def cmd_launch(args) -> int:
    from pilotnet_brain.ros.launcher import LaunchError, run_brain, run_simulation

    if args.what == "brain":
        return run_brain(args.brain_config)
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
        )
    except LaunchError as error:
        print(f"pilotnet-brain launch: error: {error}", file=sys.stderr)
        return 1
    from pilotnet_brain.evaluation.metrics import metrics_table

    print(metrics_table([result["metrics"]]))
    print(
        f"metrics: {result['metrics_path']}  logs: {result['logs']}"
        + (f"  bag: {result['bag_path']}" if result["bag_path"] else "")
    )
    return 0 if (result["metrics"].get("completed_pct") or 0) >= 100.0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pilotnet-brain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("circuits", help="list the built-in circuits with their lengths")
    p.add_argument("--set", choices=tuple(CIRCUIT_SETS), default="all", help="all, training or test circuits")
    p.add_argument("--names", action="store_true", help="print only the names, comma separated")
    p.set_defaults(func=cmd_circuits)

    p = sub.add_parser("presets", help="list the brain presets (config/brains/<name>.yaml), comma separated")
    p.add_argument("--cpu", action="store_true", help="only the presets that run without a GPU")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("drive", help="drive a brain on circuits of the embedded simulator and score it")
    p.add_argument("--brain", default="explicit", help="brain name(s), comma separated: explicit, pilotnet")
    p.add_argument("--model", help="pilotnet: model file (default: the shipped weights)")
    p.add_argument("--backend", default="torch_fp32", help="pilotnet: inference backend")
    p.add_argument("--device", choices=("cpu", "cuda"), help="pilotnet: device for torch backends")
    p.add_argument("--threads", type=int, default=1, help="pilotnet: inference threads (default 1)")
    p.add_argument(
        "--circuit", default="simple_circuit", help="built-in circuit name(s) or CSV path(s), comma separated"
    )
    p.add_argument("--direction", type=_directions, default=["ccw"], help="ccw, cw, ccw,cw or both")
    p.add_argument("--scale", type=float, default=1.0, help="scale factor for CSV circuits")
    p.add_argument("--out", help="directory for per-run JSON, trajectory plots and the summary table")
    p.add_argument("--json", action="store_true", help="print only the metrics JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_sim_options(p)
    p.set_defaults(func=cmd_drive)

    p = sub.add_parser("record", help="record a driving dataset labelled by the explicit brain")
    p.add_argument("--circuits", default=",".join(TRAINING_CIRCUITS), help="comma-separated circuits")
    p.add_argument("--direction", type=_directions, default=["ccw", "cw"], help="ccw, cw, ccw,cw or both")
    p.add_argument("--out", required=True, help="dataset directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--laps", type=int, default=1, help="laps per circuit and direction")
    p.add_argument("--frame-stride", type=int, default=1, help="keep every N-th camera frame")
    p.add_argument(
        "--perturbation-rate", type=float, default=0.15, help="steering perturbations per simulated second (0 = none)"
    )
    p.add_argument(
        "--lighting-variation", type=float, default=0.0, help="per-lap brightness varies by +- this fraction"
    )
    p.add_argument(
        "--driver",
        choices=("explicit", "pilotnet"),
        default="explicit",
        help="who drives: the expert, or PilotNet while the expert labels every frame (DAgger)",
    )
    p.add_argument("--model", help="with --driver pilotnet: its weights (default: the shipped model)")
    _add_sim_options(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("train", help="train PilotNet on a recorded dataset")
    p.add_argument(
        "--data",
        required=True,
        help="dataset directory written by `record`, or several, comma-separated (e.g. expert + DAgger)",
    )
    p.add_argument("--out", required=True, help="output weights file (.safetensors)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples-per-epoch", type=int, help="default: the training-set size")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--w-loss-weight", type=float, default=1.0, help="weight of the steering error in the loss")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="offline evaluation of a model on recorded test circuits")
    p.add_argument("--model", help="model file (default: the shipped weights)")
    p.add_argument("--backend", default="torch_fp32")
    p.add_argument("--data", required=True, help="test dataset directory written by `record`")
    p.add_argument("--out", default="runs/evaluate", help="directory for the JSON and plot")
    p.set_defaults(func=cmd_evaluate)

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
    p.add_argument("--circuit", default="simple_circuit", help="built-in circuit name or CSV path")
    p.add_argument("--direction", choices=("ccw", "cw"), default="ccw")
    p.add_argument("--scale", type=float, default=1.0, help="scale factor for CSV circuits")
    p.add_argument("--clock", choices=("lockstep", "realtime"), help="default: config/simulation.yaml")
    p.add_argument("--timeout", type=float, help="simulated seconds (default: the circuit's time-out)")
    p.add_argument("--record", action="store_true", help="also record a rosbag2 bag (bag_recorder node)")
    p.add_argument("--out", default="runs/ros", help="directory for the metrics JSON, summary.csv, logs, bag")
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("optimize", help="build optimised variants (INT8, ONNX, TFLite, ...) of a trained model")
    p.add_argument("--model", help="trained FP32 weights (default: the shipped model)")
    p.add_argument("--out", required=True, help="directory for the variants")
    p.add_argument("--methods", help="comma-separated methods (default: all; unavailable ones are skipped)")
    p.add_argument("--data", default="data/train", help="training data for calibration and QAT")
    p.add_argument(
        "--calibration-size",
        type=int,
        default=None,
        help="training frames for INT8 calibration (default: optimize.data.DEFAULT_CALIBRATION_SIZE)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("offline-benchmark", help="compare every variant: size, memory, MSE, latency")
    p.add_argument("--models", required=True, help="directory written by `optimize`")
    p.add_argument("--data", required=True, help="test dataset directory")
    p.add_argument("--methods", help="comma-separated subset (default: every variant found)")
    p.add_argument(
        "--repeats", type=int, default=1000, help="timed runs per latency figure (after >= 0.5 s of warm-up)"
    )
    p.add_argument("--out", default="runs/offline_benchmark")
    p.set_defaults(func=cmd_offline_benchmark)

    p = sub.add_parser("node-benchmark", help="brain_node's per-frame overhead beyond inference (needs rclpy)")
    p.add_argument("--brain", default="explicit,pilotnet", help="comma-separated brains")
    p.add_argument("--frames", type=int, default=300)
    p.set_defaults(func=cmd_node_benchmark)

    p = sub.add_parser("gpu-benchmark", help="PyTorch CUDA FP32 vs FP16 vs CUDA graphs at batch 1 and 32 (needs a GPU)")
    p.add_argument("--model", help="FP32 model file (default: the shipped weights)")
    p.add_argument("--repeats", type=int, default=500, help="timed calls per figure (after >= 0.5 s of warm-up)")
    p.add_argument("--out", help="JSON file for the rows")
    p.set_defaults(func=cmd_gpu_benchmark)

    p = sub.add_parser("sim-benchmark", help="render time per frame and lock-step speed-up over real time")
    p.add_argument("--frames", type=int, default=500, help="frames to time the renderer on")
    p.add_argument("--circuit", default="montreal", help="circuit for the lock-step lap")
    p.set_defaults(func=cmd_sim_benchmark)

    p = sub.add_parser("analyze", help="recompute a run's metrics from its rosbag2 bag(s) and plot them")
    p.add_argument("bags", nargs="+", help="bag directories (with metadata.yaml) recorded by bag_recorder")
    p.add_argument("--out", help="directory for per-run JSON, trajectory and time-series plots, summary")
    p.add_argument("--json", action="store_true", help="print only the metrics JSON on stdout")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("benchmark", help="every brain preset on every circuit through the ROS 2 graph")
    p.add_argument("--brains", help="brain presets (config/brains/<name>.yaml), comma separated (default: all)")
    p.add_argument(
        "--circuits",
        default=",".join(TEST_CIRCUITS),
        help="built-in circuit name(s) or CSV path(s), comma separated (default: the test circuits)",
    )
    p.add_argument("--directions", type=_directions, default=["ccw"], help="ccw, cw, ccw,cw or both")
    p.add_argument("--clock", choices=("lockstep", "realtime"), help="simulation clock (default from config)")
    p.add_argument("--timeout", type=float, help="simulated seconds before a run is stopped")
    p.add_argument("--out", default="runs/benchmark", help="directory for tables, JSON, chart and runs")
    p.add_argument("--record", action="store_true", help="record each run as a rosbag2 bag (MCAP)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_benchmark)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pilotnet_brain.errors import BackendUnavailable, CircuitError, ConfigError, ImageError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CircuitError, ConfigError, ImageError, BackendUnavailable, ValueError, FileNotFoundError) as error:
        print(f"pilotnet-brain {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
