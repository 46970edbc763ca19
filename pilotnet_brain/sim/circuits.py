"""Circuits for the driving simulator: a closed center line on a road of constant width (no ROS).

A circuit is the red line of the BehaviorMetrics Gazebo worlds. Three sources are supported:

* the built-in circuits (:mod:`builtin_circuits`), circuit maps of straights and corners
  (:mod:`track_spec`);
* generated circuits ``gen:SEED`` (:mod:`generated`), random circuit maps, one per seed;
* CSV files in the TUM racetrack database format (:mod:`tum_csv`).

Either way the control points go through a periodic cubic spline that is resampled at even arc
length (:mod:`geometry`), in driving order, point 0 being the start/finish line. What cannot be
driven is refused with a CircuitError naming the circuit or file (:func:`check_drivable`): a center
line that crosses itself once smoothed, bends tighter than the road's half width, a lap too short, a
circuit too large for the simulator's map (planned before anything is allocated).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from pilotnet_brain.errors import CircuitError
from pilotnet_brain.sim.builtin_circuits import (
    BUILTIN_CIRCUITS,
    BUILTIN_HALF_WIDTH_M,
    EVALUATION_SEEDS,
    GENERATED_PREFIX,
    TRAINING_SEEDS,
    builtin_spec,
    generated_seed,
)
from pilotnet_brain.sim.generated import generated_spec
from pilotnet_brain.sim.geometry import (
    closed_step_lengths,
    is_self_intersecting,
    loop_curvature,
    resample_closed_loop,
    reverse_keeping_start,
    signed_area,
)
from pilotnet_brain.sim.track_map import plan_grid
from pilotnet_brain.sim.track_spec import spec_control_points
from pilotnet_brain.sim.tum_csv import read_tum_track

__all__ = [
    "DIRECTIONS",
    "Circuit",
    "check_drivable",
    "circuit_names",
    "describe_circuits",
    "load_circuit",
    "load_csv",
    "widen_road",
]

DIRECTIONS = ("ccw", "cw")
#: How a generated circuit is named, for error messages.
GENERATED_SEEDS_HINT = f"{GENERATED_PREFIX}SEED (SEED {TRAINING_SEEDS.start}..{EVALUATION_SEEDS.stop - 1})"

#: A bend's radius must exceed the road's half width, or the inside edge of the road folds over itself.
MIN_RADIUS_PER_HALF_WIDTH = 1.0
#: Shortest lap: ten times the 5 m radius within which metrics count a checkpoint as reached, so a
#: lap is never "completed" by standing on the start line (a 20 m loop was).
MIN_LAP_LENGTH_M = 50.0
#: Narrowest road: four map cells (0.25 m) across each half, so its edges can be drawn.
MIN_HALF_WIDTH_M = 1.0
#: Most center-line points (every 0.5 m: a 500 km lap); checked before resampling.
MAX_CENTERLINE_POINTS = 1_000_000


@dataclass(frozen=True)
class Circuit:
    """A closed center line resampled at even arc length, in driving order.

    ``centerline`` is (N, 2) in metres; the loop is closed implicitly (the
    last point is not repeated) and point 0 is the start/finish line.
    ``spacing_m`` is the actual step between consecutive points: the
    requested spacing adjusted slightly so the lap divides into whole steps.
    ``direction`` is the sense the car drives ("ccw": the driving-order
    polygon has positive signed area).
    """

    name: str
    centerline: np.ndarray
    half_width_m: float
    direction: str
    spacing_m: float
    source: str

    def __post_init__(self) -> None:
        points = np.asarray(self.centerline, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise CircuitError(f"circuit {self.name!r}: centerline must be (N>=3, 2), got {points.shape}")
        if self.direction not in DIRECTIONS:
            raise CircuitError(f"circuit {self.name!r}: direction must be 'ccw' or 'cw', got {self.direction!r}")
        # Freeze the array too, so the frozen dataclass really is immutable.
        points = points.copy()
        points.setflags(write=False)
        object.__setattr__(self, "centerline", points)

    @property
    def length_m(self) -> float:
        """Length of the closed loop (sum of the steps, closing step included)."""
        return float(np.sum(closed_step_lengths(self.centerline)))

    def tangents(self) -> np.ndarray:
        """(N, 2) unit tangents in the driving direction (central differences)."""
        chords = np.roll(self.centerline, -1, axis=0) - np.roll(self.centerline, 1, axis=0)
        return chords / np.linalg.norm(chords, axis=1, keepdims=True)

    def curvature(self) -> np.ndarray:
        """(N,) signed curvature in 1/m, positive where the car turns left.

        Uses the circle through each point and its two neighbours, which is
        exact for points evenly spaced on a circle.
        """
        return loop_curvature(self.centerline)

    def min_radius_m(self) -> float:
        """Smallest radius of curvature along the loop (inf for no curvature)."""
        peak = float(np.max(np.abs(self.curvature())))
        return math.inf if peak == 0.0 else 1.0 / peak

    def start_pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of the start/finish line, yaw along the driving direction."""
        x, y = self.centerline[0]
        tx, ty = self.tangents()[0]
        return float(x), float(y), math.atan2(ty, tx)

    def reference_points(self, spacing_m: float) -> np.ndarray:
        """The center line resampled every ~``spacing_m`` metres: the perfect lap.

        Starts at point 0 and follows the driving order. The step is adjusted
        slightly so the lap divides into whole, equal steps.
        """
        spacing_m = _check_positive_finite(spacing_m, "spacing_m")
        return resample_closed_loop(self.centerline, spacing_m)[0]


def widen_road(circuit: Circuit, scale: float) -> Circuit:
    """`circuit` with its road `scale` times as wide, checked drivable (a bend must stay wider than the
    half width); the same circuit when `scale` is 1."""
    scale = _check_positive_finite(scale, "road width scale")
    if scale == 1.0:
        return circuit
    half_width = circuit.half_width_m * scale
    check_drivable(f"circuit {circuit.name!r} with its road {scale:g}x as wide", circuit.centerline, half_width)
    return replace(circuit, half_width_m=half_width)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise CircuitError(f"direction must be 'ccw' or 'cw', got {direction!r}")
    return direction


def _check_positive_finite(value: float, label: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CircuitError(f"{label} must be a finite number > 0, got {value!r}") from None
    if not math.isfinite(number) or number <= 0.0:
        raise CircuitError(f"{label} must be a finite number > 0, got {value!r}")
    return number


def _check_size_before_resampling(label: str, control_points: np.ndarray, half_width: float, spacing: float) -> None:
    """Refuse, before allocating anything, a circuit whose map or center line would be too large."""
    if not np.all(np.isfinite(control_points)) or not math.isfinite(half_width):
        raise CircuitError(f"{label}: coordinates or width overflow to infinity once scaled")
    if half_width < MIN_HALF_WIDTH_M:
        raise CircuitError(
            f"{label}: the road is too narrow: half width {half_width:.3g} m, at least {MIN_HALF_WIDTH_M:g} m"
        )
    try:
        plan_grid(control_points, half_width)
    except CircuitError as error:
        raise CircuitError(f"{label}: {error}") from None
    lap_estimate = float(np.sum(closed_step_lengths(control_points)))
    if lap_estimate / spacing > MAX_CENTERLINE_POINTS:
        raise CircuitError(
            f"{label}: too large: a lap of {lap_estimate / 1000:.4g} km is {lap_estimate / spacing:.3g} center-line "
            f"points at {spacing:g} m spacing, at most {MAX_CENTERLINE_POINTS:,}"
        )


def _resample(label: str, control_points: np.ndarray, spacing: float) -> tuple[np.ndarray, float]:
    try:
        return resample_closed_loop(control_points, spacing)
    except CircuitError as error:
        raise CircuitError(f"{label}: {error}") from None


def check_drivable(label: str, centerline: np.ndarray, half_width_m: float) -> None:
    """Refuse a final (resampled) center line that cannot be driven, naming ``label`` and the reason:
    it crosses or touches itself, a bend is tighter than the half width, the lap is too short, or the
    simulator's map of it would exceed its memory bound."""
    if is_self_intersecting(centerline):
        raise CircuitError(f"{label}: the center line crosses itself (checked on the smoothed line that is driven)")
    length = float(np.sum(closed_step_lengths(centerline)))
    if length < MIN_LAP_LENGTH_M:
        raise CircuitError(f"{label}: too small: the lap is {length:.3g} m long, at least {MIN_LAP_LENGTH_M:g} m")
    curvature = np.abs(loop_curvature(centerline))
    sharpest = int(np.argmax(curvature))
    if curvature[sharpest] * half_width_m * MIN_RADIUS_PER_HALF_WIDTH >= 1.0:
        along = float(np.sum(closed_step_lengths(centerline)[:sharpest]))
        raise CircuitError(
            f"{label}: too tight for its road: a bend {along:.0f} m from the start has a radius of "
            f"{1.0 / curvature[sharpest]:.3g} m, not more than the road's {half_width_m:.3g} m half width "
            "(the inside edge would fold over itself)"
        )
    try:
        plan_grid(centerline, half_width_m)
    except CircuitError as error:
        raise CircuitError(f"{label}: {error}") from None


def _make_circuit(
    name: str, ccw_points: np.ndarray, half_width: float, direction: str, spacing: float, source: str
) -> Circuit:
    """Wrap a ccw center line, reversing it (same start point) for cw driving."""
    points = ccw_points if direction == "ccw" else reverse_keeping_start(ccw_points)
    return Circuit(
        name=name,
        centerline=points,
        half_width_m=half_width,
        direction=direction,
        spacing_m=spacing,
        source=source,
    )


def load_csv(path, direction: str = "ccw", scale: float = 1.0, spacing_m: float = 0.5) -> Circuit:
    """Load a TUM racetrack-database CSV (``x_m,y_m,w_tr_right_m,w_tr_left_m``).

    The rows form a loop closed implicitly from the last row back to the
    first. ``scale`` multiplies coordinates and widths; the half width is the
    median of (w_right + w_left) / 2. The center line is the periodic spline
    through the rows, resampled every ``spacing_m``.
    """
    direction = _check_direction(direction)
    scale = _check_positive_finite(scale, "scale")
    spacing_m = _check_positive_finite(spacing_m, "spacing_m")
    path = Path(path)

    # The file is validated in its units (metres); what can be driven, at the scale it is driven.
    track = read_tum_track(path)
    label = f"track file {path}" + (f" at scale {scale:g}" if scale != 1.0 else "")
    control_points = track.points * scale
    half_width = track.half_width_m * scale
    _check_size_before_resampling(label, control_points, half_width, spacing_m)
    if signed_area(control_points) < 0.0:
        control_points = reverse_keeping_start(control_points)
    centerline, actual_spacing = _resample(label, control_points, spacing_m)
    check_drivable(label, centerline, half_width)
    return _make_circuit(path.stem, centerline, half_width, direction, actual_spacing, str(path))


@lru_cache(maxsize=256)
def _builtin_control_points(name: str) -> np.ndarray:
    """The ccw-or-cw control points of a built-in or generated circuit at scale 1 (cached, read-only)."""
    seed = generated_seed(name)
    points = spec_control_points(name, builtin_spec(name) if seed is None else generated_spec(seed))
    points.setflags(write=False)
    return points


@lru_cache(maxsize=256)
def _builtin_ccw(name: str, spacing_m: float) -> tuple[np.ndarray, float]:
    """The resampled ccw center line of a built-in or generated circuit at scale 1 (cached)."""
    control_points = _builtin_control_points(name)
    if signed_area(control_points) < 0.0:
        control_points = reverse_keeping_start(control_points)
    points, actual_spacing = resample_closed_loop(control_points, spacing_m)
    points.setflags(write=False)
    return points, actual_spacing


def circuit_names() -> list[str]:
    """Names of the built-in circuits."""
    return list(BUILTIN_CIRCUITS)


def load_circuit(name_or_path, direction: str = "ccw", scale: float = 1.0, spacing_m: float = 0.5) -> Circuit:
    """Load a built-in circuit by name, a generated one by ``gen:SEED``, or a CSV track by path.

    Anything ending in ``.csv`` or naming an existing file is read as a CSV
    (see :func:`load_csv`). ``scale`` multiplies coordinates and road width
    (of built-ins too, though they are designed for scale 1).
    """
    direction = _check_direction(direction)
    scale = _check_positive_finite(scale, "scale")
    spacing_m = _check_positive_finite(spacing_m, "spacing_m")
    text = os.fspath(name_or_path)
    if text in BUILTIN_CIRCUITS or generated_seed(text) is not None:  # gen:abc: CircuitError
        label = f"circuit {text!r}" + (f" at scale {scale:g}" if scale != 1.0 else "")
        half_width = BUILTIN_HALF_WIDTH_M * scale
        _check_size_before_resampling(label, _builtin_control_points(text) * scale, half_width, spacing_m)
        # Resample after scaling so the requested spacing holds at any scale.
        try:
            points, spacing = _builtin_ccw(text, spacing_m / scale)
        except CircuitError as error:
            raise CircuitError(f"{label}: {error}") from None
        check_drivable(label, points * scale, half_width)
        source = "builtin" if text in BUILTIN_CIRCUITS else "generated"
        return _make_circuit(text, points * scale, half_width, direction, spacing * scale, source)
    if text.lower().endswith(".csv") or Path(text).is_file():
        return load_csv(text, direction=direction, scale=scale, spacing_m=spacing_m)
    raise CircuitError(
        f"unknown circuit {text!r}: valid names are {', '.join(BUILTIN_CIRCUITS)}, {GENERATED_SEEDS_HINT} "
        "(or give the path of a .csv track file)"
    )


def describe_circuits(names: Iterable[str] = BUILTIN_CIRCUITS) -> list[dict]:
    """One summary row per built-in or generated circuit named (for ``pilotnet-brain circuits``)."""
    rows = []
    for name in names:
        circuit = load_circuit(name)
        rows.append(
            {
                "name": name,
                "length_m": round(circuit.length_m, 1),
                "min_radius_m": round(circuit.min_radius_m(), 1),
                "half_width_m": circuit.half_width_m,
            }
        )
    return rows
