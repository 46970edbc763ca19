"""Dataset recording: the explicit brain drives, frames and its commands are saved DeepLearningStudio-style.

Layout of DATA_DIR:
    dataset.json                      what was recorded and how (seed, circuits, camera, counts, git hash)
    <circuit>_<direction>/data.csv    image,v,w,x,y,yaw,lateral_offset_m,t,perturbed
    <circuit>_<direction>/images/NNNNNN.png   full 640x480 RGB frames, so the one preprocessing
                                              function (crop lower half, resize) applies unchanged

Recovery examples: now and then a short steering perturbation is added to the *applied* command, the
car drifts off the line, and the expert's own command (the label) brings it back. Labels are always
the expert's command for the frame it saw, never the perturbed one.
"""
from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .brains.base import Command
from .brains.explicit import ExplicitBrain
from .camera import Appearance
from .circuits import load_circuit
from .simulator import SimConfig, World, run_episode

CSV_COLUMNS = ("image", "v", "w", "x", "y", "yaw", "lateral_offset_m", "t", "perturbed")
PNG_COMPRESSION = 3  # synthetic frames compress well; 3 is the size/speed sweet spot


@dataclass(frozen=True)
class PerturbationSettings:
    rate_per_s: float = 0.15            # expected perturbations per simulated second
    duration_s: tuple[float, float] = (0.3, 0.8)
    yaw_rate_rps: tuple[float, float] = (0.3, 0.8)   # added to the applied angular velocity


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class _Perturber:
    """Seeded schedule of steering pulses; returns the command to apply for a frame."""

    def __init__(self, settings: PerturbationSettings, frame_period_s: float, rng: np.random.Generator):
        self.settings = settings
        self.frame_period_s = frame_period_s
        self.rng = rng
        self.until_s = -1.0
        self.extra_w = 0.0

    def __call__(self, t: float, expert: Command) -> tuple[Command, bool]:
        s = self.settings
        if t >= self.until_s and self.rng.random() < s.rate_per_s * self.frame_period_s:
            self.until_s = t + self.rng.uniform(*s.duration_s)
            self.extra_w = self.rng.choice([-1.0, 1.0]) * self.rng.uniform(*s.yaw_rate_rps)
        if t < self.until_s:
            return Command(expert.v, expert.w + self.extra_w), True
        return expert, False


def record_dataset(out_dir: Path, circuits: list[str], directions: list[str], seed: int = 0,
                   laps: int = 1, frame_stride: int = 1, perturbation: PerturbationSettings | None = None,
                   lighting_variation: float = 0.0, config: SimConfig | None = None,
                   show_progress: bool = True) -> dict:
    """Drive the expert and write frames + labels; returns the dataset summary (also in dataset.json).

    Deterministic for a seed: lock-step clock with a fixed command latency of one camera period.
    """
    from tqdm import tqdm

    config = config or SimConfig()
    if config.clock != "lockstep":
        raise ValueError("recording needs the lockstep clock (deterministic datasets)")
    if config.latency_s is None:
        config = replace(config, latency_s=1.0 / config.camera_rate_hz)
    perturbation = perturbation if perturbation is not None else PerturbationSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    summary = {"seed": seed, "laps": laps, "frame_stride": frame_stride,
               "perturbation": asdict(perturbation), "lighting_variation": lighting_variation,
               "camera_rate_hz": config.camera_rate_hz, "latency_s": config.latency_s,
               "git_revision": git_revision(), "sequences": []}
    for circuit_name in circuits:
        for direction in directions:
            circuit = load_circuit(circuit_name, direction=direction)
            seq_name = f"{circuit.name}_{direction}"
            seq_dir = out_dir / seq_name
            (seq_dir / "images").mkdir(parents=True, exist_ok=True)
            rows = []
            frame_index = 0
            for lap in range(laps):
                brightness = 1.0 + rng.uniform(-lighting_variation, lighting_variation)
                world = World(circuit, config, appearance=Appearance(brightness=brightness),
                              seed=int(rng.integers(2**31)))
                perturb = _Perturber(perturbation, 1.0 / config.camera_rate_hz, rng)
                bar = tqdm(total=100, desc=f"{seq_name} lap {lap + 1}/{laps}", unit="%",
                           disable=None if show_progress else True, leave=False)

                def hook(t, frame, state, expert, lap=lap):
                    nonlocal frame_index
                    applied, perturbed = perturb(t, expert)
                    if frame_index % frame_stride == 0:
                        name = f"images/{len(rows):06d}.png"
                        cv2.imwrite(str(seq_dir / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
                        rows.append((name, expert.v, expert.w, state.x, state.y, state.yaw,
                                     world.track.signed_distance(state.x, state.y), round(t, 4), int(perturbed)))
                    frame_index += 1
                    return applied

                def progress(fraction):
                    bar.n = min(100, int(fraction * 100))
                    bar.refresh()

                log = run_episode(world, ExplicitBrain(), frame_hook=hook, progress=progress)
                bar.close()
                if log.record.end_reason != "lap_completed":
                    # The expert must recover from every perturbation; a lost lap is a bug worth knowing.
                    raise RuntimeError(f"recording {seq_name} lap {lap + 1}: run ended by {log.record.end_reason}")
            with open(seq_dir / "data.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(CSV_COLUMNS)
                for r in rows:
                    writer.writerow([r[0]] + [f"{v:.6g}" if isinstance(v, float) else v for v in r[1:]])
            size_mb = sum(p.stat().st_size for p in (seq_dir / "images").glob("*.png")) / 1e6
            summary["sequences"].append({"name": seq_name, "circuit": circuit.name, "direction": direction,
                                         "frames": len(rows), "images_mb": round(size_mb, 1)})
    summary["frames"] = sum(s["frames"] for s in summary["sequences"])
    summary["images_mb"] = round(sum(s["images_mb"] for s in summary["sequences"]), 1)
    (out_dir / "dataset.json").write_text(json.dumps(summary, indent=2))
    return summary


def read_sequence(seq_dir: Path) -> list[dict]:
    """Rows of one recorded sequence's data.csv (numbers as floats)."""
    with open(Path(seq_dir) / "data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in CSV_COLUMNS[1:]:
            r[k] = float(r[k])
    return rows


__all__ = ["record_dataset", "read_sequence", "PerturbationSettings", "CSV_COLUMNS", "git_revision"]
