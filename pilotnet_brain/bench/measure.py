"""Measure one backend in a fresh process (called by the offline benchmark; prints one JSON object).

    python -m pilotnet_brain.bench.measure --backend NAME --file PATH --data TEST_DIR --pred OUT.npy

Order matters: the peak RSS is read after loading the model and running it (before the test set is
loaded), so it is the memory of "load + run" on top of the interpreter and the runtime's import.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from pilotnet_brain.data.frames import load_frames
from pilotnet_brain.evaluation.offline import predict_frames, score
from pilotnet_brain.runtime.registry import make_backend


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _set_torch_threads(n: int) -> None:
    try:
        import torch  # noqa: PLC0415 (the optional 'torch' extra; other backends need no torch)
    except ImportError:
        return
    torch.set_num_threads(n)


def _build(name: str, path: str, threads: int):
    _set_torch_threads(threads)
    return make_backend(name, path, threads=threads)


def latency_samples(backend, x: np.ndarray, repeats: int, warmup: int = 20, warmup_s: float = 0.5) -> np.ndarray:
    """Seconds per `backend.predict_normalized(x)` call, `repeats` times, after a warm-up."""
    # Warm up for calls *and* time: a sub-millisecond model needs hundreds of calls before the
    # runtime's arenas and the CPU clock settle, or its median moves by 20 % between runs.
    t_end = time.perf_counter() + warmup_s
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        backend.predict_normalized(x)
        done += 1
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        backend.predict_normalized(x)
        times[i] = time.perf_counter() - t0
    return times


def measure(name: str, path: str, data_dir: str, pred_path: str | None, repeats: int) -> dict:
    rss_start = _peak_rss_mb()
    all_threads = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    one = rng.random((1, 3, 66, 200), dtype=np.float32)
    batch32 = rng.random((32, 3, 66, 200), dtype=np.float32)

    t0 = time.perf_counter()
    backend = _build(name, path, threads=1)
    load_s = time.perf_counter() - t0
    lat1 = latency_samples(backend, one, repeats)
    peak_rss = _peak_rss_mb()

    backend_all = _build(name, path, threads=all_threads)
    lat_all = latency_samples(backend_all, one, repeats)
    tput_times = latency_samples(backend_all, batch32, max(repeats // 10, 10), warmup=5)
    del backend_all

    frames = load_frames(data_dir)
    pred = predict_frames(backend, frames, batch_size=32)
    if pred_path:
        np.save(pred_path, pred)
    results = score(pred, frames, backend.label_ranges)
    return {
        **backend.describe(),
        "load_s": load_s,
        "rss_before_load_mb": rss_start,
        "peak_rss_mb": peak_rss,
        "latency_1thread_p50_ms": float(np.percentile(lat1, 50) * 1e3),
        "latency_1thread_p99_ms": float(np.percentile(lat1, 99) * 1e3),
        "latency_allthreads_p50_ms": float(np.percentile(lat_all, 50) * 1e3),
        "latency_allthreads_p99_ms": float(np.percentile(lat_all, 99) * 1e3),
        "threads_all": all_threads,
        "throughput_b32_fps": float(32 / np.median(tput_times)),
        "mse": {k: v["mse"] for k, v in results.items()},
        "results": results,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--pred")
    p.add_argument("--repeats", type=int, default=1000)
    args = p.parse_args(argv)
    try:
        out = measure(args.backend, args.file, args.data, args.pred, args.repeats)
    except Exception as error:  # reported as a row, not a crash of the whole benchmark
        print(json.dumps({"backend": args.backend, "error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
