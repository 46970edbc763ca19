"""`pilotnet-brain offline-benchmark`: every available variant, side by side, in one run.

Each variant is measured in a fresh subprocess (measure.py), so imports, thread pools and memory of
one runtime never colour another's figures. The table: method | precision | file size | peak memory |
MSE per test circuit | max |delta| vs FP32 | latency p50/p99 at batch 1 (1 thread, all threads) |
throughput at batch 32 | speed-up vs FP32 eager (batch 1, 1 thread, this run).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pilotnet_brain.evaluation.plots import save_png
from pilotnet_brain.export.registry import METHODS
from pilotnet_brain.jsonio import write_json_atomic, write_text_atomic
from pilotnet_brain.sim.builtin_circuits import TEST_CIRCUITS

BASELINE = "torch_fp32"


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def available_variants(models_dir: Path, methods: list[str] | None = None) -> list[tuple[str, Path]]:
    """(backend, file) for every method whose file exists in models_dir, baseline first."""
    names = methods or list(METHODS)
    if BASELINE not in names:
        names = [BASELINE] + names
    out = []
    for name in names:
        path = models_dir / METHODS[name].filename
        if path.exists():
            out.append((name, path))
    if not out or out[0][0] != BASELINE:
        raise FileNotFoundError(
            f"{models_dir} has no {METHODS[BASELINE].filename}: run `pilotnet-brain optimize` first"
        )
    return out


def run_benchmark(
    models_dir: Path,
    data_dir: Path,
    out_dir: Path,
    methods: list[str] | None = None,
    repeats: int = 1000,
    progress=None,
) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        variants = available_variants(models_dir, methods)
        for i, (name, path) in enumerate(variants):
            if progress:
                progress(i, len(variants), name)
            pred_path = Path(tmp) / f"{name}.npy"
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pilotnet_brain.bench.measure",
                    "--backend",
                    name,
                    "--file",
                    str(path),
                    "--data",
                    str(data_dir),
                    "--pred",
                    str(pred_path),
                    "--repeats",
                    str(repeats),
                ],
                capture_output=True,
                text=True,
            )
            try:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                row = {"backend": name, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
            row["method"] = name
            row["size_mb"] = _size_mb(path)
            if pred_path.exists():
                row["_pred"] = np.load(pred_path)
            rows.append(row)
    base = rows[0]
    for row in rows:
        if "_pred" in row and "_pred" in base:
            row["max_abs_delta_vs_fp32"] = float(np.max(np.abs(row["_pred"] - base["_pred"])))
        if "latency_1thread_p50_ms" in row and "latency_1thread_p50_ms" in base:
            row["speedup_vs_fp32"] = base["latency_1thread_p50_ms"] / row["latency_1thread_p50_ms"]
        if "mse" in row and "mse" in base:
            row["mse_ratio_vs_fp32"] = {c: row["mse"][c] / base["mse"][c] for c in row["mse"] if base["mse"].get(c)}
    for row in rows:  # only now: the baseline's predictions are needed by every row above
        row.pop("_pred", None)
    write_outputs(rows, out_dir)
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict]) -> str:
    head = (
        "| method | precision | file (MB) | peak RSS (MB) | "
        + " | ".join(f"MSE {c}" for c in TEST_CIRCUITS)
        + " | max abs Δ vs FP32 | b1 1-thread p50 / p99 (ms) | b1 all-threads p50 / p99 (ms) "
        "| b32 throughput (fps) | speed-up vs FP32 eager |"
    )
    lines = [head, "| " + " | ".join(["---"] * (4 + len(TEST_CIRCUITS) + 5)) + " |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | not run: {r['error']} |")
            continue
        mse = " | ".join(_fmt(r["mse"].get(c), ".6f") for c in TEST_CIRCUITS)
        lines.append(
            f"| {r['method']} | {r.get('precision', '-')} | {r['size_mb']:.2f} | {r['peak_rss_mb']:.0f} | {mse} | "
            f"{_fmt(r.get('max_abs_delta_vs_fp32'), '.4f')} | "
            f"{r['latency_1thread_p50_ms']:.3f} / {r['latency_1thread_p99_ms']:.3f} | "
            f"{r['latency_allthreads_p50_ms']:.3f} / {r['latency_allthreads_p99_ms']:.3f} | "
            f"{r['throughput_b32_fps']:.0f} | {_fmt(r.get('speedup_vs_fp32'), '.2f')}x |"
        )
    return "\n".join(lines)


def observations(rows: list[dict]) -> str:
    """A short paragraph generated from the numbers (no hand-written figures)."""
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return "No variant could be measured."
    base = ok[0]
    worst_ratio = {r["method"]: max(r.get("mse_ratio_vs_fp32", {}).get(c, np.inf) for c in TEST_CIRCUITS) for r in ok}
    accurate = [r for r in ok if worst_ratio[r["method"]] <= 1.10]
    fastest = min(ok, key=lambda r: r["latency_1thread_p50_ms"])
    fastest_ok = min(accurate, key=lambda r: r["latency_1thread_p50_ms"]) if accurate else None
    smallest = min(ok, key=lambda r: r["size_mb"])
    most_accurate = min(ok, key=lambda r: r["mse"].get("all", np.inf))
    leanest = min(ok, key=lambda r: r["peak_rss_mb"])
    parts = [
        f"Baseline: PyTorch eager FP32 takes {base['latency_1thread_p50_ms']:.3f} ms per frame at batch 1 on one "
        f"thread, {base['size_mb']:.1f} MB on disk, {base['peak_rss_mb']:.0f} MB peak RSS, "
        f"MSE {base['mse'].get('all', float('nan')):.5f} over the test circuits.",
        f"Latency: fastest is {fastest['method']} ({fastest['latency_1thread_p50_ms']:.3f} ms, "
        f"{fastest.get('speedup_vs_fp32', 1):.1f}x FP32)"
        + (
            f"; fastest within 1.10x FP32's MSE on every test circuit is {fastest_ok['method']} "
            f"({fastest_ok.get('speedup_vs_fp32', 1):.1f}x)."
            if fastest_ok
            else "; no variant stays within 1.10x FP32's MSE."
        ),
        f"Size: smallest file is {smallest['method']} ({smallest['size_mb']:.2f} MB, "
        f"{base['size_mb'] / smallest['size_mb']:.1f}x smaller than FP32).",
        f"Memory: lowest peak RSS is {leanest['method']} ({leanest['peak_rss_mb']:.0f} MB; it includes the runtime itself).",
        f"Accuracy: lowest MSE is {most_accurate['method']} ({most_accurate['mse'].get('all', float('nan')):.5f}); "
        + ", ".join(
            f"{r['method']} {worst_ratio[r['method']]:.2f}x" for r in ok[1:] if np.isfinite(worst_ratio[r["method"]])
        )
        + " (worst test-circuit MSE relative to FP32).",
    ]
    if fastest_ok:
        parts.append(
            f"Best strategy: for latency {fastest_ok['method']}; for size {smallest['method']}; "
            f"for accuracy {most_accurate['method']}."
        )
    return " ".join(parts)


def write_outputs(rows: list[dict], out_dir: Path) -> None:

    write_json_atomic(rows, out_dir / "offline_benchmark.json")
    md = format_table(rows) + "\n\n" + observations(rows) + "\n"
    write_text_atomic(md, out_dir / "offline_benchmark.md")
    keys = (
        ["method", "precision", "size_mb", "peak_rss_mb"]
        + [f"mse_{c}" for c in TEST_CIRCUITS]
        + [
            "max_abs_delta_vs_fp32",
            "latency_1thread_p50_ms",
            "latency_1thread_p99_ms",
            "latency_allthreads_p50_ms",
            "latency_allthreads_p99_ms",
            "throughput_b32_fps",
            "speedup_vs_fp32",
            "error",
        ]
    )
    table = io.StringIO()
    w = csv.DictWriter(table, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        flat = dict(r)
        for c in TEST_CIRCUITS:
            flat[f"mse_{c}"] = r.get("mse", {}).get(c)
        w.writerow(flat)
    write_text_atomic(table.getvalue(), out_dir / "offline_benchmark.csv")
    plot_scatter(rows, out_dir / "offline_benchmark.png")


def plot_scatter(rows: list[dict], path: Path) -> None:

    ok = [r for r in rows if "error" not in r]
    fig = Figure(figsize=(7, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for r in ok:
        ax.scatter(r["latency_1thread_p50_ms"], r["mse"].get("all", np.nan), s=20 + 10 * r["size_mb"])
        ax.annotate(
            r["method"],
            (r["latency_1thread_p50_ms"], r["mse"].get("all", np.nan)),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("latency, batch 1, 1 thread, p50 (ms)")
    ax.set_ylabel("MSE over test circuits (normalised)")
    ax.set_title("PilotNet variants: latency vs accuracy (marker size ~ file size)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save_png(fig, path, dpi=110)
