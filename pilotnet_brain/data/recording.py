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
import io
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.control import Command
from pilotnet_brain.errors import CircuitError, RecordingError
from pilotnet_brain.jsonio import write_bytes_atomic, write_json_atomic, write_text_atomic
from pilotnet_brain.sim.builtin_circuits import held_out_reason
from pilotnet_brain.sim.camera import Renderer
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.conditions import random_conditions
from pilotnet_brain.sim.world import SimConfig, World, run_episode

CSV_COLUMNS = ("image", "v", "w", "x", "y", "yaw", "lateral_offset_m", "t", "perturbed")
PNG_COMPRESSION = 3  # synthetic frames compress well; 3 is the size/speed sweet spot


@dataclass(frozen=True)
class PerturbationSettings:
    rate_per_s: float = 0.15  # expected perturbations per simulated second
    duration_s: tuple[float, float] = (0.3, 0.8)
    yaw_rate_rps: tuple[float, float] = (0.3, 0.8)  # added to the applied angular velocity


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
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


def record_dataset(
    out_dir: Path,
    circuits: list[str],
    directions: list[str],
    seed: int = 0,
    laps: int = 1,
    frame_stride: int = 1,
    perturbation: PerturbationSettings | None = None,
    lighting_variation: float = 0.0,
    config: SimConfig | None = None,
    show_progress: bool = True,
    driver=None,
    driver_description: dict | None = None,
    scale: float = 1.0,
    held_out: bool = False,
    randomize_conditions: float = 0.0,
) -> dict:
    """Drive and write frames + the expert's labels; returns the dataset summary (also in dataset.json).

    held_out: False (training data): a held-out circuit (a test circuit, a generated circuit with an
    evaluation seed, a shared real track) is refused with a CircuitError before anything is written.
    True: test data for offline evaluation, on any circuit; dataset.json says `"held_out": true` and
    training refuses the dataset.

    Conditions (sim.conditions): `config.conditions` for every lap, or with `randomize_conditions` > 0
    (domain randomisation) a set drawn from the seed per lap, each rendering condition on with probability
    1/2 at a level up to randomize_conditions; dataset.json lists each lap's conditions and frame count.
    Under conditions that change the image the expert drives and labels from the clear world's frame at
    the same pose, so its labels stay right (a camera offset, a faded line); the images have the conditions.
    lighting_variation multiplies each lap's brightness on top.

    driver: None, the expert drives; else a Brain that drives while the expert labels (DAgger); a
    lap it leaves the road on ends there, its frames kept. Deterministic for a seed: lock-step clock
    with a fixed command latency of one camera period.

    Never half a dataset: every file is written atomically, each sequence's data.csv lists exactly the
    frames written, and dataset.json says whether the recording is complete. A lap the expert does not
    finish (a time-out shorter than a lap), a driver's brain error or any other failure stops the
    recording: what was recorded is kept with `"complete": false` and the reason in dataset.json, and
    RecordingError (or the original error) is raised.
    """

    config = config or SimConfig()
    if config.clock != "lockstep":
        raise ValueError("recording needs the lockstep clock (deterministic datasets)")
    if config.latency_s is None:
        config = replace(config, latency_s=1.0 / config.camera_rate_hz)
    perturbation = perturbation if perturbation is not None else PerturbationSettings()
    out_dir = Path(out_dir)
    if not held_out:
        for name in circuits:
            reason = held_out_reason(name)
            if reason:
                raise CircuitError(f"{reason}: not recorded as training data (test data: record --held-out)")
    loaded = [load_circuit(name, direction=direction, scale=scale) for name in circuits for direction in directions]
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    summary = {
        "seed": seed,
        "laps": laps,
        "frame_stride": frame_stride,
        "perturbation": asdict(perturbation),
        "lighting_variation": lighting_variation,
        "conditions": config.conditions.label,
        "randomize_conditions": randomize_conditions,
        "camera_rate_hz": config.camera_rate_hz,
        "latency_s": config.latency_s,
        "git_revision": git_revision(),
        "sequences": [],
        "driver": driver_description or ({"brain": driver.name} if driver is not None else {"brain": "explicit"}),
        "labels": "explicit",
        "held_out": held_out,
        "complete": False,
    }
    if not 0.0 <= randomize_conditions <= 1.0:
        raise ValueError(f"randomize_conditions {randomize_conditions} is outside [0, 1]")
    if randomize_conditions > 0 and config.conditions:
        raise ValueError("conditions and randomize_conditions exclude each other")
    # Its own stream, so a recording without conditions draws exactly what it did before conditions existed.
    conditions_rng = np.random.default_rng([seed, 0xC0D1])
    try:
        for circuit in loaded:
            _record_sequence(
                out_dir,
                circuit,
                summary,
                rng,
                laps,
                frame_stride,
                perturbation,
                lighting_variation,
                config,
                show_progress,
                driver,
                randomize_conditions=randomize_conditions,
                conditions_rng=conditions_rng,
            )
        summary["complete"] = True
    except BaseException as error:
        summary["incomplete_reason"] = str(error) or type(error).__name__
        raise
    finally:
        summary["frames"] = sum(s["frames"] for s in summary["sequences"])
        summary["images_mb"] = round(sum(s["images_mb"] for s in summary["sequences"]), 1)
        write_json_atomic(summary, out_dir / "dataset.json")
    return summary


def _record_sequence(
    out_dir: Path,
    circuit,
    summary: dict,
    rng,
    laps: int,
    frame_stride: int,
    perturbation: PerturbationSettings,
    lighting_variation: float,
    config: SimConfig,
    show_progress: bool,
    driver,
    randomize_conditions: float = 0.0,
    conditions_rng: np.random.Generator | None = None,
) -> None:
    """Record one circuit and direction into out_dir/<circuit>_<direction>; its data.csv and its entry in
    summary["sequences"] are written even when a lap fails (then with the frames recorded so far)."""
    seq_name = f"{circuit.name}_{circuit.direction}"
    seq_dir = out_dir / seq_name
    (seq_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    ends = []
    lap_conditions, lap_frames = [], []
    frame_index = 0
    try:
        for lap in range(laps):
            brightness = 1.0 + rng.uniform(-lighting_variation, lighting_variation)
            lap_seed = int(rng.integers(2**31))
            conditions = (
                random_conditions(conditions_rng, randomize_conditions) if randomize_conditions else config.conditions
            )
            lap_config = replace(config, conditions=conditions, seed=lap_seed)
            look = conditions.appearance()
            world = World(circuit, lap_config, appearance=replace(look, brightness=look.brightness * brightness))
            lap_conditions.append(conditions.label)
            lap_frames.append(0)
            perturb = _Perturber(perturbation, 1.0 / config.camera_rate_hz, rng)
            # The expert sees the clear world where the conditions change the image (its labels stay right).
            clear_view = _ClearView(world) if conditions.changes_rendering else None
            labeller = ExplicitBrain() if driver is not None else None
            expert_driver = ExplicitBrain() if clear_view is None else _ClearViewBrain(ExplicitBrain(), clear_view)
            bar = tqdm(
                total=100,
                desc=f"{seq_name} lap {lap + 1}/{laps}",
                unit="%",
                disable=None if show_progress else True,
                leave=False,
            )

            def hook(t, frame, state, command, world=world, labeller=labeller, perturb=perturb, clear_view=clear_view):
                nonlocal frame_index
                if labeller is None:
                    expert = command
                else:
                    expert = labeller.step(frame if clear_view is None else clear_view.render(state), t).command
                applied, perturbed = perturb(t, command)
                if frame_index % frame_stride == 0:
                    name = f"images/{len(rows):06d}.png"
                    write_png_atomic(frame, seq_dir / name)
                    lap_frames[-1] += 1
                    rows.append(
                        (
                            name,
                            expert.v,
                            expert.w,
                            state.x,
                            state.y,
                            state.yaw,
                            world.track.signed_distance(state.x, state.y),
                            round(t, 4),
                            int(perturbed),
                        )
                    )
                frame_index += 1
                return applied

            def progress(fraction, bar=bar):
                bar.n = min(100, int(fraction * 100))
                bar.refresh()

            if labeller is not None:
                labeller.reset()
            log = run_episode(world, driver or expert_driver, frame_hook=hook, progress=progress)
            bar.close()
            ends.append(log.record.end_reason)
            if log.brain_error:
                raise RecordingError(
                    f"recording {seq_name} lap {lap + 1}: the driver's brain failed: "
                    f"{log.brain_error}; {_kept(out_dir, rows, summary)}"
                )
            if driver is None and log.record.end_reason != "lap_completed":
                # The expert must finish every lap (it recovers from every perturbation): a time-out
                # shorter than a lap, or a lost lap, which is a bug worth knowing.
                raise RecordingError(
                    f"recording {seq_name} lap {lap + 1}: run ended by {log.record.end_reason} after "
                    f"{log.record.t[-1]:.1f} s of simulated time, before the lap was complete"
                    + (
                        " (raise --timeout, or 0 for the circuit's time-out)"
                        if log.record.end_reason == "timeout"
                        else ""
                    )
                    + f"; {_kept(out_dir, rows, summary)}"
                )
    finally:
        write_sequence(seq_dir, rows)
        size_mb = sum(p.stat().st_size for p in (seq_dir / "images").glob("*.png")) / 1e6
        summary["sequences"].append(
            {
                "name": seq_name,
                "circuit": circuit.name,
                "direction": circuit.direction,
                "frames": len(rows),
                "images_mb": round(size_mb, 1),
                "lap_end_reasons": ends,
                "lap_conditions": lap_conditions,
                "lap_frames": lap_frames,
            }
        )


class _ClearView:
    """The world as it is without conditions, seen from the car's true camera pose: what the expert sees."""

    def __init__(self, world: World):
        self.world = world
        self.renderer = Renderer(world.track)
        camera = self.renderer.camera
        self._frame = np.empty((camera.height, camera.width, 3), np.uint8)

    def render(self, state) -> np.ndarray:
        return self.renderer.render(state.x, state.y, state.yaw, self._frame)


class _ClearViewBrain:
    """A brain driving on the clear view at the world's current state instead of the frame it is handed."""

    def __init__(self, brain, clear_view: _ClearView):
        self.brain, self.clear_view = brain, clear_view
        self.name = brain.name

    def reset(self) -> None:
        self.brain.reset()

    def step(self, image_rgb, stamp_s):
        return self.brain.step(self.clear_view.render(self.clear_view.world.state), stamp_s)


def _kept(out_dir: Path, rows: list, summary: dict) -> str:
    frames = len(rows) + sum(s["frames"] for s in summary["sequences"])
    return f"kept the {frames} frame(s) recorded, marked incomplete in {out_dir / 'dataset.json'}"


def write_png_atomic(frame_rgb: np.ndarray, path: Path) -> None:
    """One RGB frame as a PNG, written atomically."""
    ok, png = cv2.imencode(
        ".png", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    )
    if not ok:
        raise ValueError(f"cannot encode frame {path.name} as PNG")
    write_bytes_atomic(png.tobytes(), path)


def write_sequence(seq_dir: Path, rows: list) -> None:
    """A sequence's data.csv (CSV_COLUMNS, one row per frame written), atomically."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r[0]] + [f"{v:.6g}" if isinstance(v, float) else v for v in r[1:]])
    write_text_atomic(text.getvalue(), Path(seq_dir) / "data.csv")


def read_sequence(seq_dir: Path) -> list[dict]:
    """Rows of one recorded sequence's data.csv (numbers as floats); a malformed file is a ValueError naming it."""
    path = Path(seq_dir) / "data.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [k for k in CSV_COLUMNS if k not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a recorded sequence (missing column(s) {', '.join(missing)})")
        rows = list(reader)
    for line, r in enumerate(rows, start=2):
        for k in CSV_COLUMNS[1:]:
            try:
                r[k] = float(r[k])
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {line}: {k}={r[k]!r} is not a number") from None
    return rows


__all__ = ["record_dataset", "read_sequence", "PerturbationSettings", "CSV_COLUMNS", "git_revision"]
