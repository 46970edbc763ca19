"""The GPU benchmark: a clear refusal without CUDA, and its harness (timing, speed-up, agreement) on CPU."""

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from pilotnet_brain.bench import gpu as gpu_benchmark
from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL
from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.runtime.registry import make_backend

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
def test_gpu_benchmark_without_cuda_says_what_is_missing():
    with pytest.raises(BackendUnavailable, match="CUDA"):
        gpu_benchmark.run_gpu_benchmark(SHIPPED_MODEL, repeats=3)
    run = subprocess.run(
        [sys.executable, "-m", "pilotnet_brain.cli", "gpu-benchmark", "--repeats", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        run.returncode == 2 and "needs a CUDA GPU" in run.stderr and "torch.cuda.is_available() is False" in run.stderr
    )


def test_gpu_benchmark_harness_on_cpu_stand_ins(monkeypatch):
    # Every "GPU" case is the CPU FP32 backend here, so each must agree exactly with the baseline.
    built = []

    def cpu_stand_in(name, path, cuda_graph=False, threads=None):
        built.append((name, cuda_graph))
        return make_backend("torch_fp32", path, threads=1)

    monkeypatch.setattr(gpu_benchmark, "make_backend", cpu_stand_in)
    rows = gpu_benchmark.run_gpu_benchmark(SHIPPED_MODEL, repeats=5)
    assert [(c.backend, c.cuda_graph) for c in gpu_benchmark.CASES] == built[:4]
    assert len(rows) == 2 * (1 + len(gpu_benchmark.CASES))
    assert {r["batch"] for r in rows} == set(gpu_benchmark.BATCH_SIZES)
    assert all(r["max_abs_diff"] == 0.0 and r["p50_ms"] > 0 and r["speedup"] > 0 for r in rows)
    table = gpu_benchmark.gpu_table(rows, "stand-in")
    assert "torch_cuda_fp16 + CUDA graph | 1 |" in table and table.count("\n| ") == len(rows) + 2  # header, rule, rows
