"""Offline evaluation: a backend's predictions against the expert's labels on recorded test circuits.

Per circuit (both directions pooled): MSE of v, of w and of both on the normalised [0, 1] scale
(DeepLearningStudio's scale, so the figures compare with theirs), MAE of v (m/s) and w (rad/s) in
physical units, and the number of samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pilotnet_brain.data.frames import FrameSet
from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.evaluation.plots import save_png
from pilotnet_brain.jsonio import write_json_atomic
from pilotnet_brain.model.preprocessing import to_network_input


def predict_frames(backend, frames: FrameSet, batch_size: int = 64) -> np.ndarray:
    """(N, 2) normalised predictions of `backend` for every frame."""
    out = np.empty((len(frames), 2), np.float32)
    for start in range(0, len(frames), batch_size):
        sl = slice(start, start + batch_size)
        out[sl] = backend.predict_normalized(to_network_input(frames.images[sl]))
    return out


def score(pred_norm: np.ndarray, frames: FrameSet, ranges) -> dict:
    """Per-circuit and overall error figures."""
    target_norm = ranges.normalize(frames.labels)
    pred_phys = ranges.denormalize(pred_norm)
    circuits = np.array([frames.circuit_of(i) for i in range(len(frames))]) if len(frames) else np.array([])
    results = {}
    for name in sorted(set(circuits)) + ["all"]:
        m = np.ones(len(frames), bool) if name == "all" else circuits == name
        err = pred_norm[m] - target_norm[m]
        phys = np.abs(pred_phys[m] - frames.labels[m])
        results[name] = {
            "samples": int(m.sum()),
            "mse_v": float(np.mean(err[:, 0] ** 2)),
            "mse_w": float(np.mean(err[:, 1] ** 2)),
            "mse": float(np.mean(err**2)),
            "mae_v_mps": float(np.mean(phys[:, 0])),
            "mae_w_rps": float(np.mean(phys[:, 1])),
        }
    return results


def format_table(results: dict) -> str:
    lines = [
        "| circuit | samples | MSE v | MSE w | MSE (v, w) | MAE v (m/s) | MAE w (rad/s) |",
        "| :--- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['samples']} | {r['mse_v']:.5f} | {r['mse_w']:.5f} | {r['mse']:.5f} | "
            f"{r['mae_v_mps']:.3f} | {r['mae_w_rps']:.4f} |"
        )
    return "\n".join(lines)


def plot_predictions(pred_norm: np.ndarray, frames: FrameSet, ranges, path: Path, title: str = "") -> Path:
    """Predicted vs true v and w (physical units), one colour per circuit."""

    pred = ranges.denormalize(pred_norm)
    circuits = np.array([frames.circuit_of(i) for i in range(len(frames))])
    fig = Figure(figsize=(11, 5))
    FigureCanvasAgg(fig)
    for k, (label, unit) in enumerate((("v", "m/s"), ("w", "rad/s"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for name in sorted(set(circuits)):
            m = circuits == name
            ax.scatter(frames.labels[m, k], pred[m, k], s=3, alpha=0.4, label=name)
        lo = float(min(frames.labels[:, k].min(), pred[:, k].min()))
        hi = float(max(frames.labels[:, k].max(), pred[:, k].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"expert {label} ({unit})")
        ax.set_ylabel(f"predicted {label} ({unit})")
        ax.grid(alpha=0.3)
        ax.legend(markerscale=4, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=110)
    return path


def check_finite_predictions(pred_norm: np.ndarray, frames: FrameSet, backend) -> None:
    """A model that predicts NaN or inf has no error figures: ModelFileError naming the model and the frames."""
    bad = ~np.isfinite(pred_norm).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        raise ModelFileError(
            f"model {backend.path} ({backend.name}) predicts NaN or inf for {int(bad.sum())} of {len(bad)} frames "
            f"(first: frame {first} of {frames.sequences[frames.sequence[first]]}); no error figures for it"
        )


def evaluate(backend, frames: FrameSet, out_dir: Path | None = None, name: str = "offline_eval") -> dict:
    """Score `backend` on `frames`; with out_dir, write `<name>.json` and `<name>.png` there (atomically).
    Non-finite predictions raise ModelFileError before anything is written."""
    pred = predict_frames(backend, frames)
    check_finite_predictions(pred, frames, backend)
    results = score(pred, frames, backend.label_ranges)
    if out_dir is not None:
        out_dir = Path(out_dir)
        doc = {"model": str(backend.path), **backend.describe(), "results": results}
        write_json_atomic(doc, out_dir / f"{name}.json")
        plot_predictions(
            pred, frames, backend.label_ranges, out_dir / f"{name}.png", title=f"{backend.name}: predicted vs expert"
        )
    return results
