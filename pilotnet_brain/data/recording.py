"""Dataset recording: frames and the explicit brain's commands, saved DeepLearningStudio-style.

Layout of DATA_DIR:
    dataset.json                      what was recorded and how (seed, circuits, camera, counts, git hash)
    <circuit>_<direction>/data.csv    image,v,w,x,y,yaw,lateral_offset_m,t,perturbed
    <circuit>_<direction>/images/NNNNNN.png   full 640x480 RGB frames, so the one preprocessing
                                              function (crop lower half, resize) applies unchanged

Recovery examples: now and then a short steering perturbation is added to the *applied* command, the
car drifts off the line, and the expert's own command (the label) brings it back. Labels are always
the expert's command for the frame it saw, never the perturbed one.

DAgger (Ross, Gordon & Bagnell 2011): with `driver` set, another brain (the learned one) drives and
the expert only labels the frames. A network trained on the expert's own trajectories sees few of the
states it drifts into itself (measured: on its own trajectory the learned brain corrects a lateral
offset ~60 % less than the expert would); these recordings label exactly those states.
"""
from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from pilotnet_brain.control import Command
from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.sim.camera import Appearance
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.world import SimConfig, World, run_episode
from tqdm import tqdm

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

    def __call__(self, t: float, command: Command) -> tuple[Command, bool]:
        s = self.settings
        if t >= self.until_s and self.rng.random() < s.rate_per_s * self.frame_period_s:
            self.until_s = t + self.rng.uniform(*s.duration_s)
            self.extra_w = self.rng.choice([-1.0, 1.0]) * self.rng.uniform(*s.yaw_rate_rps)
        if t < self.until_s:
            return Command(command.v, command.w + self.extra_w), True
        return command, False


def record_dataset(out_dir: Path, circuits: list[str], directions: list[str], seed: int = 0,
                   laps: int = 1, frame_stride: int = 1, perturbation: PerturbationSettings | None = None,
                   lighting_variation: float = 0.0, config: SimConfig | None = None,
                   show_progress: bool = True, driver=None, driver_description: dict | None = None) -> dict:
    """Drive and write frames + the expert's labels; returns the dataset summary (also in dataset.json).

    driver: None, the expert drives; else a Brain that drives while the expert labels (DAgger); a
    lap it leaves the road on ends there, its frames kept. Deterministic for a seed: lock-step clock
    with a fixed command latency of one camera period.
    """

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
               "git_revision": git_revision(), "sequences": [],
               "driver": driver_description or ({"brain": driver.name} if driver is not None else {"brain": "explicit"}),
               "labels": "explicit"}
    for circuit_name in circuits:
        for direction in directions:
            circuit = load_circuit(circuit_name, direction=direction)
            seq_name = f"{circuit.name}_{direction}"
            seq_dir = out_dir / seq_name
            (seq_dir / "images").mkdir(parents=True, exist_ok=True)
            rows = []
            ends = []
            frame_index = 0
            for lap in range(laps):
                brightness = 1.0 + rng.uniform(-lighting_variation, lighting_variation)
                world = World(circuit, config, appearance=Appearance(brightness=brightness),
                              seed=int(rng.integers(2**31)))
                perturb = _Perturber(perturbation, 1.0 / config.camera_rate_hz, rng)
                labeller = ExplicitBrain() if driver is not None else None
                bar = tqdm(total=100, desc=f"{seq_name} lap {lap + 1}/{laps}", unit="%",
                           disable=None if show_progress else True, leave=False)

                def hook(t, frame, state, command, lap=lap):
                    nonlocal frame_index
                    expert = command if labeller is None else labeller.step(frame, t).command
                    applied, perturbed = perturb(t, command)
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

                if labeller is not None:
                    labeller.reset()
                log = run_episode(world, driver or ExplicitBrain(), frame_hook=hook, progress=progress)
                bar.close()
                ends.append(log.record.end_reason)
                if driver is None and log.record.end_reason != "lap_completed":
                    # The expert must recover from every perturbation; a lost lap is a bug worth knowing.
                    raise RuntimeError(f"recording {seq_name} lap {lap + 1}: run ended by {log.record.end_reason}")
            with open(seq_dir / "data.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(CSV_COLUMNS)
                for r in rows:
                    writer.writerow([r[0]] + [f"{v:.6g}" if isinstance(v, float) else v for v in r[1:]])
            size_mb = sum(p.stat().st_size for p in (seq_dir / "images").glob("*.png")) / 1e6
            summary["sequences"].append({"name": seq_name, "circuit": circuit.name, "direction": direction,
                                         "frames": len(rows), "images_mb": round(size_mb, 1),
                                         "lap_end_reasons": ends})
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
