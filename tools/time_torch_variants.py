#!/usr/bin/env python
"""Batch-1, 1-thread latency and test-set MSE of the PyTorch PilotNet variants (a script, not a test).

    python tools/time_torch_variants.py [--model pilotnet_brain/models/pilotnet_fp32.safetensors]
        [--train data/train] [--test data/test] [--out /tmp/torch_variants] [--qat-epochs 2]

Without --model (or if the file is missing) a random-init PilotNet (with non-trivial input
BatchNorm statistics) is used, so the timings still mean something; MSE then means little.
Builds every variant with the optimize builders, loads each through its backend, and times
`predict_normalized` on one preprocessed frame, round-robin over the backends (so load from other
jobs on the machine hits all of them alike), after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pilotnet_brain.backends import make_backend  # noqa: E402
from pilotnet_brain.optimize import torch_variants as tv  # noqa: E402
from pilotnet_brain.optimize.data import OptimizeData  # noqa: E402
from pilotnet_brain.pilotnet.data import load_frames  # noqa: E402
from pilotnet_brain.pilotnet.labels import DEFAULT_LABEL_RANGES  # noqa: E402
from pilotnet_brain.pilotnet.model import PilotNet  # noqa: E402
from pilotnet_brain.pilotnet.weights import save_model  # noqa: E402
from pilotnet_brain.preprocessing import to_network_input  # noqa: E402

VARIANTS = [  # (backend, builder, file)
    ("torch_fp32", tv.build_fp32_copy, "pilotnet_fp32.safetensors"),
    ("torch_fp32_traced", None, "pilotnet_fp32.safetensors"),
    ("torch_int8_dynamic", tv.build_dynamic_int8, "pilotnet_int8_dynamic.pt"),
    ("torch_int8_static", tv.build_static_int8, "pilotnet_int8_static.pt"),
    ("torch_int8_qat", tv.build_qat_int8, "pilotnet_int8_qat.pt"),
]


def random_model(path: Path) -> Path:
    torch.manual_seed(0)
    model = PilotNet().train()
    with torch.no_grad():
        model(torch.rand(16, 3, 66, 200) * 0.6 + 0.2)
    return save_model(model.eval(), path, DEFAULT_LABEL_RANGES, extra={"note": "random init (timing only)"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pilotnet_brain/models/pilotnet_fp32.safetensors")
    ap.add_argument("--train", default="data/train")
    ap.add_argument("--test", default="data/test")
    ap.add_argument("--out", default="/tmp/torch_variants")
    ap.add_argument("--calibration", type=int, default=300)
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--qat-samples", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--mse-frames", type=int, default=2000, help="test frames for the MSE (0: all)")
    ap.add_argument("--only", help="comma-separated backends to time (torch_fp32 is always included)")
    ap.add_argument("--skip-build", action="store_true", help="reuse the files in --out")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args.model)
    if not model.is_file():
        print(f"{model} not found: timing a random-init PilotNet", flush=True)
        model = random_model(out / "random_fp32.safetensors")
    torch.set_num_threads(2)   # building (QAT) may use both cores; timing below is 1 thread
    train = load_frames(args.train)
    data = OptimizeData.from_frames(train, calibration_size=args.calibration)
    build_s = {}
    if not args.skip_build:
        for name, builder, filename in VARIANTS:
            if builder is None:
                continue
            t0 = time.perf_counter()
            kwargs = {"epochs": args.qat_epochs, "samples_per_epoch": args.qat_samples, "show_progress": True} \
                if builder is tv.build_qat_int8 else {}
            builder(model, out / filename, data, **kwargs)
            build_s[name] = round(time.perf_counter() - t0, 1)
            print(f"built {name} in {build_s[name]} s", flush=True)

    torch.set_num_threads(1)
    only = set(args.only.split(",")) | {"torch_fp32"} if args.only else None
    backends = {name: make_backend(name, out / filename) for name, _, filename in VARIANTS
                if only is None or name in only}

    test = load_frames(args.test)
    x1 = to_network_input(test.images[len(test) // 2][None])   # one real frame
    # Time first, on fresh backends (each saw batch 1 first, as on the robot), then the MSE pass.
    for b in backends.values():
        for _ in range(args.warmup):
            b.predict_normalized(x1)
    times = {name: [] for name in backends}
    for _ in range(args.rounds):
        for name, b in backends.items():
            for _ in range(10):   # untimed: refill the caches after the previous backend
                b.predict_normalized(x1)
            for _ in range(args.calls):
                t0 = time.perf_counter()
                b.predict_normalized(x1)
                times[name].append(time.perf_counter() - t0)
    idx = np.arange(len(test))
    if args.mse_frames and len(test) > args.mse_frames:
        idx = np.sort(np.random.default_rng(0).choice(len(test), args.mse_frames, replace=False))
    x_all = to_network_input(test.images[idx])
    ranges = backends["torch_fp32"].label_ranges
    y_true = ranges.normalize(test.labels[idx])
    preds = {name: np.concatenate([b.predict_normalized(x_all[s:s + 64]) for s in range(0, len(x_all), 64)])
             for name, b in backends.items()}
    mse = {name: float(np.mean((p - y_true) ** 2)) for name, p in preds.items()}
    vs_fp32 = {name: float(np.max(np.abs(p - preds["torch_fp32"]))) for name, p in preds.items()}

    base = statistics.median(times["torch_fp32"])
    base_p10 = sorted(times["torch_fp32"])[int(0.1 * len(times["torch_fp32"]))]
    rows = []
    print(f"\nbatch 1, 1 thread, median of {args.rounds * args.calls} calls (round-robin); "
          f"MSE on {len(idx)} test frames (normalised v, w); torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print(f"{'backend':20s} {'min us':>7s} {'p10 us':>7s} {'median us':>10s} {'p90 us':>8s} {'speed-up':>8s} "
          f"{'MSE':>9s} {'MSE/fp32':>8s} {'max|d| vs fp32':>14s}")
    for name, ts in times.items():
        ts = sorted(ts)
        med, p90, p10 = statistics.median(ts), ts[int(0.9 * len(ts))], ts[int(0.1 * len(ts))]
        row = {"backend": name, "min_us": round(ts[0] * 1e6, 1), "p10_us": round(p10 * 1e6, 1),
               "median_us": round(med * 1e6, 1), "p90_us": round(p90 * 1e6, 1),
               "speedup_vs_fp32": round(base / med, 2),
               "speedup_p10_vs_fp32": round(base_p10 / p10, 2), "mse": mse[name],
               "mse_ratio": round(mse[name] / mse["torch_fp32"], 4), "max_abs_diff_vs_fp32": vs_fp32[name],
               "build_s": build_s.get(name)}
        rows.append(row)
        print(f"{name:20s} {row['min_us']:7.1f} {row['p10_us']:7.1f} {row['median_us']:10.1f} {row['p90_us']:8.1f} "
              f"{row['speedup_vs_fp32']:7.2f}x "
              f"{mse[name]:9.5f} {row['mse_ratio']:8.3f} {vs_fp32[name]:14.5f}")
    (out / "timings.json").write_text(json.dumps({"model": str(model), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
