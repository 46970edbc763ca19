"""Commands that train, evaluate, optimise and benchmark PilotNet offline (torch and the runtimes load lazily)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from pilotnet_brain.bench.gpu import gpu_table, run_gpu_benchmark
from pilotnet_brain.bench.offline import format_table as format_benchmark_table
from pilotnet_brain.bench.offline import observations, run_benchmark
from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL
from pilotnet_brain.cli.common import (
    choice_list,
    existing_dir,
    existing_file,
    finite_float,
    non_empty_list,
    non_negative_int,
    output_dir,
    output_file,
    positive_int,
)
from pilotnet_brain.data.calibration import DEFAULT_CALIBRATION_SIZE, OptimizeData
from pilotnet_brain.data.frames import check_trainable, load_frames
from pilotnet_brain.evaluation.offline import evaluate
from pilotnet_brain.evaluation.offline import format_table as format_offline_eval_table
from pilotnet_brain.export.build import format_results, optimize, parse_methods
from pilotnet_brain.export.registry import METHODS
from pilotnet_brain.jsonio import write_json_atomic
from pilotnet_brain.runtime.registry import BACKEND_NAMES, make_backend


def cmd_train(args) -> int:
    from pilotnet_brain.train.trainer import TrainConfig, train_from_directory  # noqa: PLC0415  (optional: torch)

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
        init_weights=args.init,
        device=args.device,
    )
    out = Path(args.out)
    summary = train_from_directory([Path(d) for d in args.data], out, config)
    print(
        f"best validation MSE {summary['best_val_mse']:.5f} at epoch {summary['best_epoch']}; "
        f"{summary['train_frames']} training / {summary['val_frames']} validation frames; "
        f"{summary['train_seconds']:.0f} s -> {out} (+ {out.stem}.json, {out.stem}_loss.png)"
    )
    return 0


def cmd_evaluate(args) -> int:

    backend = make_backend(args.backend, Path(args.model) if args.model else SHIPPED_MODEL)
    frames = load_frames(Path(args.data))
    results = evaluate(backend, frames, Path(args.out), name=f"offline_eval_{backend.name}")
    print(f"{backend.name} ({backend.path.name}) on {args.data}:\n")
    print(format_offline_eval_table(results))
    print(f"\nJSON and predicted-vs-true plot in {args.out}/")
    return 0


def cmd_optimize(args) -> int:

    methods = parse_methods(",".join(args.methods) if args.methods else None)
    check_trainable(args.data)  # calibration and QAT learn from it: never from held-out test data
    data = OptimizeData.from_frames(
        load_frames(Path(args.data)), args.calibration_size or DEFAULT_CALIBRATION_SIZE, seed=args.seed
    )
    results = optimize(Path(args.model) if args.model else SHIPPED_MODEL, Path(args.out), methods, data)
    print()
    print(format_results(results))
    return 0 if all(r.status != "failed" for r in results) else 1


def cmd_offline_benchmark(args) -> int:

    methods = args.methods
    bar = tqdm(total=None, desc="offline benchmark", unit="variant", file=sys.stderr)

    def progress(i, n, name):
        bar.total = n
        bar.n = i
        bar.set_postfix_str(name)
        bar.refresh()

    rows = run_benchmark(Path(args.models), Path(args.data), Path(args.out), methods, args.repeats, progress)
    bar.close()
    print(format_benchmark_table(rows))
    print()
    print(observations(rows))
    print(f"\nMarkdown, CSV, JSON and a latency/accuracy scatter in {args.out}/")
    return 0


def cmd_gpu_benchmark(args) -> int:

    rows = run_gpu_benchmark(Path(args.model) if args.model else SHIPPED_MODEL, repeats=args.repeats)
    import torch  # noqa: PLC0415  (optional: torch)

    print(gpu_table(rows, torch.cuda.get_device_name(0)))
    if args.out:
        write_json_atomic(rows, args.out)
    return 0


def existing_dir_list(text: str) -> list[str]:
    """An argparse type: one or more existing directories, comma separated."""
    return [existing_dir(d) for d in non_empty_list(text)]


def weights_file(text: str) -> str:
    """An argparse type: where `train` can write its .safetensors weights (checked before training)."""
    if Path(text).suffix != ".safetensors":
        raise argparse.ArgumentTypeError(f"{text}: PilotNet weights are saved as .safetensors")
    return output_file(text)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the `pilotnet-brain` parser."""
    p = sub.add_parser("train", help="train PilotNet on a recorded dataset")
    p.add_argument(
        "--data",
        type=existing_dir_list,
        required=True,
        help="dataset directory written by `record`, or several, comma-separated (e.g. expert + DAgger)",
    )
    p.add_argument("--out", type=weights_file, required=True, help="output weights file (.safetensors)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=finite_float(min=0.0, min_exclusive=True), default=1e-3)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument(
        "--val-fraction", type=finite_float(min=0.0, max=1.0, min_exclusive=True, max_exclusive=True), default=0.1
    )
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--samples-per-epoch", type=positive_int, help="default: the training-set size")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument(
        "--w-loss-weight", type=finite_float(min=0.0), default=1.0, help="weight of the steering error in the loss"
    )
    p.add_argument(
        "--init", type=existing_file, help="fine-tune: start from these weights (.safetensors) instead of random ones"
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto (default): a CUDA GPU when torch sees one, else the CPU; recorded in the weights' metadata",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="offline evaluation of a model on recorded test circuits")
    p.add_argument("--model", type=existing_file, help="model file (default: the shipped weights)")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="torch_fp32")
    p.add_argument("--data", type=existing_dir, required=True, help="test dataset directory written by `record`")
    p.add_argument("--out", type=output_dir, default="runs/evaluate", help="directory for the JSON and plot")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("optimize", help="build optimised variants (INT8, ONNX, TFLite, ...) of a trained model")
    p.add_argument("--model", type=existing_file, help="trained FP32 weights (default: the shipped model)")
    p.add_argument("--out", type=output_dir, required=True, help="directory for the variants")
    p.add_argument(
        "--methods",
        type=choice_list(tuple(METHODS), "method(s)"),
        help="comma-separated methods (default: all; unavailable ones are skipped)",
    )
    p.add_argument("--data", type=existing_dir, default="data/train", help="training data for calibration and QAT")
    p.add_argument(
        "--calibration-size",
        type=positive_int,
        default=None,
        help="training frames for INT8 calibration (default: optimize.data.DEFAULT_CALIBRATION_SIZE)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("offline-benchmark", help="compare every variant: size, memory, MSE, latency")
    p.add_argument("--models", type=existing_dir, required=True, help="directory written by `optimize`")
    p.add_argument("--data", type=existing_dir, required=True, help="test dataset directory")
    p.add_argument("--methods", type=non_empty_list, help="comma-separated subset (default: every variant found)")
    p.add_argument(
        "--repeats", type=positive_int, default=1000, help="timed runs per latency figure (after >= 0.5 s of warm-up)"
    )
    p.add_argument("--out", type=output_dir, default="runs/offline_benchmark")
    p.set_defaults(func=cmd_offline_benchmark)

    p = sub.add_parser("gpu-benchmark", help="PyTorch CUDA FP32 vs FP16 vs CUDA graphs at batch 1 and 32 (needs a GPU)")
    p.add_argument("--model", type=existing_file, help="FP32 model file (default: the shipped weights)")
    p.add_argument(
        "--repeats", type=positive_int, default=500, help="timed calls per figure (after >= 0.5 s of warm-up)"
    )
    p.add_argument("--out", type=output_file, help="JSON file for the rows")
    p.set_defaults(func=cmd_gpu_benchmark)
