"""Recorded datasets as arrays for training and offline evaluation.

Frames go through the one preprocessing path (crop_and_resize) once and are cached as 66x200 uint8
next to the data (`.pilotnet_cache.npz`, rebuilt when a data.csv changes), so an epoch never decodes
a PNG. `to_network_input` (the second half of `preprocess`) is applied per batch.

A lap recorded with the camera turned (the `camera_yaw` condition, named per lap in dataset.json) is
turned back by that yaw as it is cropped, as brain_node turns back what it sees by its estimate of the
yaw (brains.camera_yaw): the network learns from the frames it will be given, not from turned frames
labelled as if they were straight (one frame cannot tell a turned camera from a turned car).
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pilotnet_brain.brains.camera_yaw import view_correction
from pilotnet_brain.data.recording import read_sequence
from pilotnet_brain.errors import CircuitError
from pilotnet_brain.model.preprocessing import PREPROCESSING_VERSION, crop_and_resize
from pilotnet_brain.sim.builtin_circuits import held_out_reason
from pilotnet_brain.sim.camera import CameraModel
from pilotnet_brain.sim.conditions import parse_conditions

CACHE_NAME = ".pilotnet_cache.npz"


@dataclass
class FrameSet:
    images: np.ndarray  # (N, 66, 200, 3) uint8 RGB, already cropped and resized
    labels: np.ndarray  # (N, 2) float32 physical (v, w)
    sequence: np.ndarray  # (N,) int index into `sequences`
    sequences: list[str]  # e.g. "montreal_ccw"

    def __len__(self) -> int:
        return len(self.labels)

    def circuit_of(self, i: int) -> str:
        return self.sequences[self.sequence[i]].split("@", 1)[0].rsplit("_", 1)[0]

    def subset(self, mask: np.ndarray) -> "FrameSet":
        return FrameSet(self.images[mask], self.labels[mask], self.sequence[mask], self.sequences)


def sequence_dirs(data_dir: Path) -> list[Path]:
    dirs = sorted(p.parent for p in Path(data_dir).glob("*/data.csv"))
    if not dirs:
        raise FileNotFoundError(
            f"no recorded sequences (*/data.csv) in {data_dir}; record some with `pilotnet-brain record --out DIR`"
        )
    return dirs


def check_trainable(data_dir: str | Path) -> None:
    """Refuse (CircuitError, one line) a dataset that must never be trained on: recorded as test data
    (`record --held-out`), or with a sequence on a held-out circuit (a recording made before that mark)."""
    data_dir = Path(data_dir)
    meta = data_dir / "dataset.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text())
        except ValueError as error:
            raise ValueError(f"{meta}: not valid JSON ({error})") from None
        if isinstance(info, dict) and info.get("held_out") is True:
            raise CircuitError(f"{data_dir}: held-out test data (recorded with --held-out), never trained on")
    for seq_dir in sequence_dirs(data_dir):
        reason = held_out_reason(seq_dir.name.rsplit("_", 1)[0])  # <circuit>_<direction>
        if reason:
            raise CircuitError(f"{data_dir}: sequence {seq_dir.name}: {reason}")


def _load_image(path: Path, view: np.ndarray | None = None) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return crop_and_resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), view)


def lap_conditions(data_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """Sequence name -> its laps' (conditions, frame count), from dataset.json (empty without it)."""
    meta = data_dir / "dataset.json"
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    return {
        s["name"]: list(zip(s.get("lap_conditions") or [], s.get("lap_frames") or []))
        for s in info.get("sequences") or []
        if isinstance(s, dict) and "name" in s
    }


def camera_yaws_deg(laps: list[tuple[str, int]], seq_dir: Path, n_rows: int) -> list[float]:
    """The camera's yaw (deg) for each of a sequence's frames, from its laps' conditions (0 for laps
    without `camera_yaw`)."""
    yaws = [parse_conditions(c).parameters.camera_yaw_offset_deg for c, _ in laps]
    if not any(yaws):
        return [0.0] * n_rows
    if sum(n for _, n in laps) != n_rows:
        raise ValueError(
            f"{seq_dir.parent / 'dataset.json'}: the laps of {seq_dir.name} count {sum(n for _, n in laps)} frames, "
            f"data.csv {n_rows}"
        )
    return [yaw for yaw, (_, n) in zip(yaws, laps) for _ in range(n)]


def load_frames(data_dir: str | Path, use_cache: bool = True, workers: int = 4) -> FrameSet:
    """Every frame of every sequence under data_dir (sorted by sequence name, then frame)."""
    data_dir = Path(data_dir)
    dirs = sequence_dirs(data_dir)
    digest = hashlib.sha256(PREPROCESSING_VERSION.encode())
    rows = {d: read_sequence(d) for d in dirs}
    laps = lap_conditions(data_dir)  # read once, not per sequence
    yaws = {d: camera_yaws_deg(laps.get(d.name, []), d, len(rows[d])) for d in dirs}
    for d in dirs:
        digest.update(d.name.encode())
        digest.update((d / "data.csv").read_bytes())
        if any(yaws[d]):
            digest.update(repr(yaws[d]).encode())
        for image in sorted((d / "images").glob("*.png")):  # a re-recorded frame invalidates the cache
            st = image.stat()
            digest.update(f"{image.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    key = digest.hexdigest()
    cache = data_dir / CACHE_NAME
    if use_cache and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return FrameSet(z["images"], z["labels"], z["sequence"], [str(s) for s in z["sequences"]])

    paths, views, labels, seq = [], [], [], []
    turned_back = {}  # yaw (deg) -> its view correction
    for i, d in enumerate(dirs):
        for row, yaw in zip(rows[d], yaws[d]):
            if yaw and yaw not in turned_back:
                turned_back[yaw] = view_correction(CameraModel(), math.radians(yaw))
            paths.append(d / row["image"])
            views.append(turned_back[yaw] if yaw else None)
            labels.append((row["v"], row["w"]))
            seq.append(i)
    with ThreadPoolExecutor(workers) as pool:  # cv2 releases the GIL while decoding
        images = np.stack(list(pool.map(_load_image, paths, views)))
    frames = FrameSet(images, np.asarray(labels, np.float32), np.asarray(seq, np.int32), [d.name for d in dirs])
    if use_cache:
        try:
            np.savez(
                cache,
                key=key,
                images=frames.images,
                labels=frames.labels,
                sequence=frames.sequence,
                sequences=np.asarray(frames.sequences),
            )
        except OSError:
            pass  # a read-only dataset still works, just slower next time
    return frames


def concat_frame_sets(sets: list[FrameSet], labels: list[str]) -> FrameSet:
    """Several FrameSets as one (e.g. expert recordings + DAgger recordings).

    Sequence names that occur in more than one set get that set's label as a suffix
    ("many_curves_ccw@dagger"), so circuit_of still finds the circuit and no two sequences merge.
    """
    if len(sets) == 1:
        return sets[0]
    counts: dict[str, int] = {}
    for fs in sets:
        for name in fs.sequences:
            counts[name] = counts.get(name, 0) + 1
    names, offset, seq = [], 0, []
    for label, fs in zip(labels, sets):
        names += [n if counts[n] == 1 else f"{n}@{label}" for n in fs.sequences]
        seq.append(fs.sequence + offset)
        offset += len(fs.sequences)
    return FrameSet(
        np.concatenate([fs.images for fs in sets]),
        np.concatenate([fs.labels for fs in sets]),
        np.concatenate(seq).astype(np.int32),
        names,
    )


def block_split(n: int, val_fraction: float, block: int = 150, seed: int = 0) -> np.ndarray:
    """Boolean validation mask choosing whole blocks of consecutive frames.

    Neighbouring frames are near-duplicates: a per-frame random split would leak them into
    validation and make its loss meaningless.
    """
    blocks = np.arange(n) // block
    n_blocks = int(blocks.max()) + 1 if n else 0
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(n_blocks * val_fraction))) if n_blocks > 1 else 0
    val_blocks = rng.choice(n_blocks, size=n_val, replace=False) if n_val else np.array([], int)
    return np.isin(blocks, val_blocks)
