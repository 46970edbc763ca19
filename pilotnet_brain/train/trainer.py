"""Train PilotNet on recorded expert driving (PyTorch, CPU-friendly).

- Inputs: the one preprocessing path (cached 66x200 crops, scaled to [0, 1] per batch).
- Labels: min-max normalised (v, w) with the ranges stored in the weights' metadata.
- Balancing: sharp turns are rare on a race track, so samples are drawn with weights inversely
  proportional to the frequency of their |w| bin (capped), and half of each batch is mirrored
  left-right with w negated.
- Augmentations, batched in torch: brightness / contrast / colour jitter, blur, small affine shifts,
  shadows, pixel noise.
- Adam, block validation split, best-validation checkpoint, loss curve PNG, fixed seed.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from pilotnet_brain.data.frames import FrameSet, block_split, check_trainable, concat_frame_sets, load_frames
from pilotnet_brain.data.recording import git_revision
from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.model.labels import DEFAULT_LABEL_RANGES, LabelRanges
from pilotnet_brain.model.network import PilotNet, count_parameters
from pilotnet_brain.model.preprocessing import to_network_input
from pilotnet_brain.model.weights import load_model, save_model


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    augment: bool = True
    flip: bool = True
    oversample_turns: bool = True
    threads: int = 2
    samples_per_epoch: int | None = None  # None: the training set size
    w_loss_weight: float = 1.0  # weight of the w (steering) error against v's in the loss
    init_weights: str | None = None  # fine-tune: start from these weights (.safetensors) instead of random ones
    device: str = "auto"  # auto: CUDA when torch sees a GPU, else the CPU


def turn_weights(w: np.ndarray, bins: int = 15, cap: float = 8.0) -> np.ndarray:
    """Sampling weight per frame ~ 1 / frequency of its |w| bin, capped at `cap` x the most common."""
    a = np.abs(w)
    edges = np.linspace(0, max(float(a.max()), 1e-6), bins + 1)
    idx = np.clip(np.digitize(a, edges) - 1, 0, bins - 1)
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    weight = counts.max() / np.maximum(counts[idx], 1)
    return np.minimum(weight, cap)


class Augmenter:
    """Random photometric and small geometric changes on a float batch (N, 3, 66, 200) in [0, 1]."""

    def __init__(self, generator: torch.Generator):
        self.g = generator
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k = (k[:, None] * k[None, :]) / 256.0
        self.blur_kernel = k.expand(3, 1, 5, 5).contiguous()

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.g)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        # Photometric: brightness, contrast, per-channel gain.
        x = x * self._u(n, 0.65, 1.35).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * self._u(n, 0.75, 1.25).view(n, 1, 1, 1) + mean
        x = x * (1 + 0.08 * (2 * torch.rand(n, 3, 1, 1, generator=self.g) - 1))
        # Shadows: darken one side of a random line across the image.
        shadow = torch.rand(n, generator=self.g) < 0.35
        if shadow.any():
            m = int(shadow.sum())
            ys = torch.linspace(-1, 1, x.shape[2]).view(1, -1, 1)
            xs = torch.linspace(-1, 1, x.shape[3]).view(1, 1, -1)
            angle = self._u(m, 0, 2 * math.pi).view(m, 1, 1)
            offset = self._u(m, -0.6, 0.6).view(m, 1, 1)
            side = (xs * torch.cos(angle) + ys * torch.sin(angle)) > offset
            factor = 1 - self._u(m, 0.25, 0.55).view(m, 1, 1) * side
            x[shadow] = x[shadow] * factor.unsqueeze(1)
        # Small affine: rotation +-2 deg, shift +-3 % / +-4 %, scale +-4 % (labels unchanged).
        affine = torch.rand(n, generator=self.g) < 0.5
        if affine.any():
            m = int(affine.sum())
            a = self._u(m, -0.035, 0.035)
            s = self._u(m, 0.96, 1.04)
            theta = torch.zeros(m, 2, 3)
            theta[:, 0, 0] = s * torch.cos(a)
            theta[:, 0, 1] = -s * torch.sin(a)
            theta[:, 1, 0] = s * torch.sin(a)
            theta[:, 1, 1] = s * torch.cos(a)
            theta[:, 0, 2] = self._u(m, -0.03, 0.03)
            theta[:, 1, 2] = self._u(m, -0.04, 0.04)
            grid = F.affine_grid(theta, list(x[affine].shape), align_corners=False)
            x[affine] = F.grid_sample(x[affine], grid, padding_mode="border", align_corners=False)
        # Blur.
        blur = torch.rand(n, generator=self.g) < 0.2
        if blur.any():
            x[blur] = F.conv2d(F.pad(x[blur], (2, 2, 2, 2), mode="replicate"), self.blur_kernel, groups=3)
        # Sensor noise.
        x = x + 0.015 * torch.randn(x.shape, generator=self.g) * (torch.rand(n, 1, 1, 1, generator=self.g) < 0.5)
        return x.clamp_(0.0, 1.0)


def _weighted_mse(pred: torch.Tensor, target: torch.Tensor, w_weight: float) -> torch.Tensor:
    """MSE with the steering column weighted; equals plain MSE for w_weight = 1."""
    err = (pred - target) ** 2
    weights = torch.tensor([1.0, w_weight]) * (2.0 / (1.0 + w_weight))
    return (err * weights).mean()


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def evaluate_mse(model: PilotNet, images: np.ndarray, targets: np.ndarray, batch_size: int = 256) -> float:
    """Mean squared error over both normalised outputs."""
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    with torch.inference_mode():
        for sl in _batches(len(images), batch_size):
            x = torch.from_numpy(to_network_input(images[sl])).to(device)
            y = torch.from_numpy(targets[sl]).to(device)
            total += float(F.mse_loss(model(x), y, reduction="sum"))
    return total / (len(images) * 2)


def train(
    frames: FrameSet,
    out_path: Path,
    config: TrainConfig,
    label_ranges: LabelRanges = DEFAULT_LABEL_RANGES,
    data_description: dict | None = None,
    show_progress: bool = True,
) -> dict:
    """Train, keep the best validation checkpoint at out_path; returns the training history/summary."""

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(config.threads)
    g = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    targets = label_ranges.normalize(frames.labels)
    val_mask = block_split(len(frames), config.val_fraction, seed=config.seed)
    train_idx = np.flatnonzero(~val_mask)
    val_idx = np.flatnonzero(val_mask)
    if len(train_idx) == 0:
        raise ValueError("no training frames left after the validation split")
    weights = turn_weights(frames.labels[train_idx, 1]) if config.oversample_turns else np.ones(len(train_idx))
    p = weights / weights.sum()
    per_epoch = config.samples_per_epoch or len(train_idx)

    device = resolve_device(config.device)
    if config.init_weights:
        model, _, init_ranges = load_model(config.init_weights)
        if init_ranges != label_ranges:
            raise ValueError(
                f"{config.init_weights}: its label ranges differ from the training labels' ({init_ranges})"
            )
    else:
        model = PilotNet()
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    augment = Augmenter(g) if config.augment else None
    history = {"epoch": [], "train_mse": [], "val_mse": [], "seconds": []}
    best = math.inf
    best_epoch = -1
    t_start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.choice(train_idx, size=per_epoch, replace=True, p=p)
        running, seen = 0.0, 0
        bar = tqdm(
            total=per_epoch,
            desc=f"epoch {epoch}/{config.epochs}",
            unit="img",
            leave=False,
            disable=None if show_progress else True,
        )
        for sl in _batches(per_epoch, config.batch_size):
            idx = order[sl]
            x = torch.from_numpy(to_network_input(frames.images[idx]))
            y = torch.from_numpy(targets[idx].copy())
            if config.flip:
                flip = torch.rand(len(idx), generator=g) < 0.5
                x[flip] = torch.flip(x[flip], dims=[3])
                # Mirror the turn: w -> -w, i.e. normalised w -> (w_min + w_max - w - 2 w_min) / span.
                y_w_phys = y[flip, 1] * float(label_ranges.span[1]) + label_ranges.w_min
                y[flip, 1] = (-y_w_phys - label_ranges.w_min) / float(label_ranges.span[1])
            if augment is not None:
                x = augment(x)
            x, y = x.to(device), y.to(device)  # flips and augmentation on the CPU: their random streams stay the same
            optimizer.zero_grad(set_to_none=True)
            loss = _weighted_mse(model(x), y, config.w_loss_weight)
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.update(len(idx))
            bar.set_postfix(mse=f"{running / seen:.4f}")
        bar.close()
        scheduler.step()
        train_mse = running / max(seen, 1)
        val_mse = evaluate_mse(model, frames.images[val_idx], targets[val_idx]) if len(val_idx) else train_mse
        seconds = time.perf_counter() - t0
        for k, v in (("epoch", epoch), ("train_mse", train_mse), ("val_mse", val_mse), ("seconds", seconds)):
            history[k].append(v)
        improved = val_mse < best
        if improved:
            best, best_epoch = val_mse, epoch
            summary = _summary(config, frames, train_idx, val_idx, history, best, best_epoch, t_start, data_description)
            save_model(
                copy.deepcopy(model).cpu() if device.type != "cpu" else model,
                out_path,
                label_ranges,
                extra={"training": summary, "git_revision": git_revision(), "parameters": count_parameters(model)},
            )
        if show_progress:
            print(
                f"epoch {epoch:3d}  train mse {train_mse:.5f}  val mse {val_mse:.5f}  {seconds:5.0f} s"
                + ("  *best, saved" if improved else ""),
                flush=True,
            )
    summary = _summary(config, frames, train_idx, val_idx, history, best, best_epoch, t_start, data_description)
    plot_loss_curve(history, out_path.with_name(out_path.stem + "_loss.png"), best_epoch)
    out_path.with_name(out_path.stem + "_history.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when torch sees a GPU, else the CPU; 'cuda' without one is an error naming why."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(f"--device {name}: torch {torch.__version__} sees no CUDA GPU on this machine")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _summary(config, frames, train_idx, val_idx, history, best, best_epoch, t_start, data_description) -> dict:
    return {
        "config": asdict(config),
        "data": data_description or {},
        "sequences": frames.sequences,
        "train_frames": int(len(train_idx)),
        "val_frames": int(len(val_idx)),
        "best_val_mse": best,
        "best_epoch": best_epoch,
        "train_seconds": round(time.perf_counter() - t_start, 1),
        "torch": torch.__version__,
        "device": describe_device(resolve_device(config.device)),  # where this training step ran
        "history": history,
    }


def plot_loss_curve(history: dict, path: Path, best_epoch: int) -> Path:

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(history["epoch"], history["train_mse"], label="train (augmented)")
    ax.plot(history["epoch"], history["val_mse"], label="validation")
    if best_epoch > 0:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (normalised v, w)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def train_from_directory(data_dir, out_path: Path, config: TrainConfig, show_progress: bool = True) -> dict:
    """Train on one dataset directory or a list of them (e.g. expert + DAgger recordings); held-out test
    data is refused (CircuitError) before anything is loaded."""
    data_dirs = [Path(d) for d in (data_dir if isinstance(data_dir, (list, tuple)) else [data_dir])]
    for d in data_dirs:
        check_trainable(d)
    sets, descriptions = [], []
    for d in data_dirs:
        sets.append(load_frames(d))
        description = {"dir": str(d), "frames": len(sets[-1])}
        meta = d / "dataset.json"
        if meta.is_file():
            description["recording"] = json.loads(meta.read_text())
            description["recording"].pop("sequences", None)
        descriptions.append(description)
    frames = concat_frame_sets(sets, [d.name for d in data_dirs])
    del sets
    description = descriptions[0] if len(descriptions) == 1 else {"frames": len(frames), "datasets": descriptions}
    return train(frames, out_path, config, data_description=description, show_progress=show_progress)
