#!/usr/bin/env python
"""Batch-1, 1-thread latency of the ONNX Runtime / TensorFlow / LiteRT PilotNet variants against PyTorch
eager FP32, and their agreement with it (a script, not a test).

    python tools/time_onnx_tf_variants.py [--model pilotnet_brain/models/pilotnet_fp32.safetensors]
        [--train data/train] [--test data/test] [--out /tmp/onnx_tf_variants] [--iters 300]

Without a model file a random-init PilotNet is used (timings still mean something). Calibration:
OptimizeData.from_frames(load_frames(--train)) (300 frames). Builds every variant whose runtime is
installed with the optimize builders (TF-TRT is reported as unavailable where it is), loads each
through its backend with threads=1, and times `predict_normalized` on one preprocessed frame,
round-robin over the backends after a warm-up so load from other jobs hits all of them alike.
Agreement: max and mean |variant - torch| (normalised outputs) and MSE against the labels on up
to --eval-frames test frames.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pilotnet_brain.backends import BackendUnavailable, make_backend  # noqa: E402
from pilotnet_brain.optimize.data import OptimizeData  # noqa: E402
from pilotnet_brain.optimize.registry import METHODS, builder_for  # noqa: E402
from pilotnet_brain.pilotnet.data import load_frames  # noqa: E402
from pilotnet_brain.pilotnet.labels import DEFAULT_LABEL_RANGES  # noqa: E402
from pilotnet_brain.preprocessing import to_network_input  # noqa: E402

VARIANTS = ("onnx_fp32", "onnx_int8", "tf_fp32", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8",
            "tftrt_fp32", "tftrt_fp16", "tftrt_int8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--model", default="pilotnet_brain/models/pilotnet_fp32.safetensors")
    ap.add_argument("--train", default="data/train")
    ap.add_argument("--test", default="data/test")
    ap.add_argument("--out", default="/tmp/onnx_tf_variants")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--eval-frames", type=int, default=1000)
    ap.add_argument("--only", default="", help="comma-separated subset of the variants")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model = Path(args.model)
    if not model.is_file():
        import torch

        from pilotnet_brain.pilotnet.model import PilotNet
        from pilotnet_brain.pilotnet.weights import save_model

        print(f"{model} not found: using a random-init PilotNet")
        torch.manual_seed(0)
        model = save_model(PilotNet().eval(), out / "random_fp32.safetensors", DEFAULT_LABEL_RANGES)

    train = load_frames(args.train)
    data = OptimizeData.from_frames(train, calibration_size=300)
    del train
    try:
        test = load_frames(args.test)
        idx = np.linspace(0, len(test) - 1, min(args.eval_frames, len(test))).astype(int)
        eval_x, eval_y = to_network_input(test.images[idx]), test.labels[idx]
    except FileNotFoundError:
        eval_x, eval_y = data.calibration, None

    backends = {"torch_fp32": make_backend("torch_fp32", model, threads=1)}
    build_s, notes = {}, {}
    for name in [v for v in VARIANTS if not args.only or v in args.only.split(",")]:
        method = METHODS[name]
        try:
            t0 = time.perf_counter()
            path = builder_for(method)(model, out / method.filename, data)
            build_s[name] = time.perf_counter() - t0
            backends[name] = make_backend(name, path, threads=1)
        except BackendUnavailable as error:
            notes[name] = str(error)

    ranges = backends["torch_fp32"].label_ranges
    ref = backends["torch_fp32"].predict_normalized(eval_x)
    rows = {}
    for name, backend in backends.items():
        y = ref if name == "torch_fp32" else np.concatenate(
            [backend.predict_normalized(eval_x[i:i + 64]) for i in range(0, len(eval_x), 64)])
        diff = np.abs(y - ref)
        rows[name] = {"max_diff": float(diff.max()), "mean_diff": float(diff.mean())}
        if eval_y is not None:
            rows[name]["mse"] = float(np.mean((y - ranges.normalize(eval_y)) ** 2))

    one = eval_x[:1]
    samples = {name: [] for name in backends}
    for _ in range(30):  # warm-up
        for backend in backends.values():
            backend.predict_normalized(one)
    for _ in range(args.iters):
        for name, backend in backends.items():
            t0 = time.perf_counter()
            backend.predict_normalized(one)
            samples[name].append(time.perf_counter() - t0)

    base = statistics.median(samples["torch_fp32"])
    print(f"\n{platform.processor() or platform.machine()}, batch 1, 1 thread, median of {args.iters} "
          f"(round-robin); agreement on {len(eval_x)} frames; model {model}")
    print(f"{'backend':16} {'median us':>10} {'p90 us':>8} {'speed-up':>8} {'max|d|':>8} {'mean|d|':>8} "
          f"{'MSE':>8} {'size KB':>8} {'build s':>7}")
    for name, s in samples.items():
        s = sorted(s)
        med, p90 = statistics.median(s), s[int(0.9 * len(s))]
        path = backends[name].path
        size = (sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir()
                else path.stat().st_size) / 1024
        r = rows[name]
        print(f"{name:16} {med * 1e6:10.0f} {p90 * 1e6:8.0f} {base / med:8.2f} {r['max_diff']:8.4f} "
              f"{r['mean_diff']:8.5f} {r.get('mse', float('nan')):8.5f} {size:8.0f} {build_s.get(name, 0):7.1f}")
        r.update(median_us=med * 1e6, p90_us=p90 * 1e6, size_kb=size)
    for name, note in notes.items():
        print(f"{name:16} unavailable: {note}")
    (out / "timings.json").write_text(json.dumps({"rows": rows, "unavailable": notes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
