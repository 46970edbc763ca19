"""PyTorch on a CUDA GPU: FP32 vs FP16, eager vs a captured CUDA graph, batch 1 and 32.

The one script to run when a GPU is available (`pilotnet-brain gpu-benchmark`). PyTorch eager FP32 on
the CPU is measured in the same run as the baseline of the speed-up column. Without CUDA it raises
BackendUnavailable naming what is missing; TF-TRT is not measured here (it needs TensorFlow built with
TensorRT, see optimize/tf_variants.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pilotnet_brain.bench.measure import latency_samples
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.runtime.registry import make_backend

BATCH_SIZES = (1, 32)


@dataclass(frozen=True)
class GpuCase:
    backend: str
    cuda_graph: bool = False

    @property
    def label(self) -> str:
        return self.backend + (" + CUDA graph" if self.cuda_graph else "")


CASES = (
    GpuCase("torch_cuda_fp32"),
    GpuCase("torch_cuda_fp16"),
    GpuCase("torch_cuda_fp32", cuda_graph=True),
    GpuCase("torch_cuda_fp16", cuda_graph=True),
)


def _timed(backend, batch: np.ndarray, repeats: int) -> dict:
    seconds = latency_samples(backend, batch, repeats)
    return {
        "p50_ms": float(np.median(seconds) * 1e3),
        "p99_ms": float(np.percentile(seconds, 99) * 1e3),
        "fps": float(len(batch) / np.median(seconds)),
    }


def run_gpu_benchmark(model: Path, repeats: int = 500, seed: int = 0) -> list[dict]:
    """One row per (case, batch size), plus the CPU FP32 baseline rows; raises BackendUnavailable without CUDA."""
    gpu_backends = [(case, make_backend(case.backend, model, cuda_graph=case.cuda_graph)) for case in CASES]
    rng = np.random.default_rng(seed)
    batches = {n: rng.random((n, *INPUT_SHAPE), dtype=np.float32) for n in BATCH_SIZES}
    cpu = make_backend("torch_fp32", model, threads=1)
    reference = {n: cpu.predict_normalized(batches[n]) for n in BATCH_SIZES}
    baseline = {n: _timed(cpu, batches[n], repeats) for n in BATCH_SIZES}
    rows = [
        {"case": "torch_fp32 (CPU, 1 thread)", "batch": n, **baseline[n], "speedup": 1.0, "max_abs_diff": 0.0}
        for n in BATCH_SIZES
    ]
    for case, backend in gpu_backends:
        for n in BATCH_SIZES:
            timing = _timed(backend, batches[n], repeats)
            diff = float(np.abs(backend.predict_normalized(batches[n]) - reference[n]).max())
            rows.append(
                {
                    "case": case.label,
                    "batch": n,
                    **timing,
                    "speedup": baseline[n]["p50_ms"] / timing["p50_ms"],
                    "max_abs_diff": diff,
                }
            )
    return rows


def gpu_table(rows: list[dict], device_name: str) -> str:
    lines = [
        f"GPU: {device_name}; CUDA graphs replay batch 1 only (batch 32 runs eager).",
        "",
        "| case | batch | p50 (ms) | p99 (ms) | throughput (fps) | speed-up vs CPU FP32 (same batch) | max abs Δ vs CPU FP32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['case']} | {r['batch']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['fps']:.0f} | "
        f"{r['speedup']:.1f}x | {r['max_abs_diff']:.4f} |"
        for r in rows
    ]
    return "\n".join(lines)
