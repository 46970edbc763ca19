"""Circuit center lines for the driving simulator (pure Python/numpy/scipy, no ROS).

A circuit is a closed center line (the red line of the BehaviorMetrics Gazebo
worlds) on a road of constant width. Two sources are supported:

* five built-in circuits shaped after the BehaviorMetrics worlds. They are
  described like a circuit map, as a list of straights and constant-radius
  corners (our own design, no real track data). The curvature profile is
  eased at every straight/corner junction so the road has no kinks, the
  profile is integrated into control points, and two "closing" straights are
  solved for so the loop closes exactly;
* CSV files in the TUM racetrack database format
  (``x_m,y_m,w_tr_right_m,w_tr_left_m``).

Either way the control points go through a periodic cubic spline that is
resampled at even arc length, in driving order, point 0 being the
start/finish line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy.interpolate import CubicSpline

from pilotnet_brain.errors import CircuitError

__all__ = [
    "BUILTIN_CIRCUITS",
    "Circuit",
    "CircuitError",
    "circuit_names",
    "describe_circuits",
    "is_self_intersecting",
    "load_circuit",
    "load_csv",
]


DIRECTIONS = ("ccw", "cw")

# Road width of every built-in circuit (the BehaviorMetrics worlds' asphalt band).
BUILTIN_HALF_WIDTH_M = 3.5

# Closure rule for CSV files (the loop is closed implicitly, from the last row
# back to the first): the closing gap may be a few ordinary steps long, but a
# gap both much longer than the typical step and longer than a road width's
# worth of metres means the file holds an open path, not a lap.
MAX_CLOSING_GAP_STEPS = 5.0
MAX_CLOSING_GAP_M = 20.0

MIN_CSV_POINTS = 10

# Consecutive points closer than this are one point (some files repeat rows).
DUPLICATE_TOLERANCE_M = 1e-6


# --------------------------------------------------------------------------
# The circuit
# --------------------------------------------------------------------------


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
        return float(np.sum(_closed_step_lengths(self.centerline)))

    def tangents(self) -> np.ndarray:
        """(N, 2) unit tangents in the driving direction (central differences)."""
        chords = np.roll(self.centerline, -1, axis=0) - np.roll(self.centerline, 1, axis=0)
        return chords / np.linalg.norm(chords, axis=1, keepdims=True)

    def curvature(self) -> np.ndarray:
        """(N,) signed curvature in 1/m, positive where the car turns left.

        Uses the circle through each point and its two neighbours, which is
        exact for points evenly spaced on a circle.
        """
        prev_pts = np.roll(self.centerline, 1, axis=0)
        next_pts = np.roll(self.centerline, -1, axis=0)
        incoming = self.centerline - prev_pts
        outgoing = next_pts - self.centerline
        cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
        denominator = (
            np.linalg.norm(incoming, axis=1)
            * np.linalg.norm(outgoing, axis=1)
            * np.linalg.norm(next_pts - prev_pts, axis=1)
        )
        return 2.0 * cross / denominator

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
        return _resample_closed_loop(self.centerline, spacing_m)[0]


# --------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------


def _closed_step_lengths(points: np.ndarray) -> np.ndarray:
    """Length of each step of the closed polyline, closing step last."""
    return np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)


def _signed_area(points: np.ndarray) -> float:
    """Shoelace area of the closed polygon; positive when counter-clockwise."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _reverse_keeping_start(points: np.ndarray) -> np.ndarray:
    """Drive the loop the other way round from the same start point."""
    return np.concatenate([points[:1], points[:0:-1]])


def _resample_closed_loop(control_points: np.ndarray, spacing_m: float) -> tuple[np.ndarray, float]:
    """Periodic cubic spline through the control points, resampled at even arc length.

    Returns (points, actual_spacing). The spline is parametrised by
    cumulative chord length; arc length is then measured on a dense
    evaluation of it, so the output steps are equal to ~1e-6 relative.
    """
    closed = np.vstack([control_points, control_points[:1]])
    chord = np.concatenate([[0.0], np.cumsum(_closed_step_lengths(control_points))])
    spline = CubicSpline(chord, closed, bc_type="periodic")

    # Dense enough that chord and arc agree far below a millimetre.
    dense_step = min(spacing_m, float(np.min(np.diff(chord)))) / 8.0
    dense_count = max(int(math.ceil(chord[-1] / dense_step)), 8 * len(control_points))
    dense_param = np.linspace(0.0, chord[-1], dense_count + 1)
    dense_points = spline(dense_param)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense_points, axis=0), axis=1))])

    total_length = arc[-1]
    count = max(int(round(total_length / spacing_m)), 3)
    target_arc = np.arange(count) * (total_length / count)
    points = spline(np.interp(target_arc, arc, dense_param))
    return points, float(np.sum(_closed_step_lengths(points)) / count)


def _orientation(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Twice the signed area of triangles (p, q, r), row-wise."""
    return (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0])


def _on_segment(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Whether collinear point r lies within the bounding box of segment p-q."""
    return (
        (np.minimum(p[:, 0], q[:, 0]) <= r[:, 0])
        & (r[:, 0] <= np.maximum(p[:, 0], q[:, 0]))
        & (np.minimum(p[:, 1], q[:, 1]) <= r[:, 1])
        & (r[:, 1] <= np.maximum(p[:, 1], q[:, 1]))
    )


def _candidate_segment_pairs(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(M, 2) pairs i < j of segments whose bounding boxes share a grid cell.

    The cell is as large as the longest segment, so each segment touches at
    most 2 x 2 cells and the pair count stays near-linear for a track.
    """
    cell = float(np.max(np.linalg.norm(ends - starts, axis=1)))
    if cell <= 0.0:
        cell = 1.0
    origin = np.minimum(starts, ends).min(axis=0)
    low = np.floor((np.minimum(starts, ends) - origin) / cell).astype(np.int64)
    high = np.floor((np.maximum(starts, ends) - origin) / cell).astype(np.int64)
    columns = int(high[:, 0].max()) + 2

    cell_ids, segment_ids = [], []
    index = np.arange(len(starts))
    for dx in (0, 1):
        for dy in (0, 1):
            inside = (low[:, 0] + dx <= high[:, 0]) & (low[:, 1] + dy <= high[:, 1])
            cell_ids.append((low[inside, 1] + dy) * columns + low[inside, 0] + dx)
            segment_ids.append(index[inside])
    cell_ids = np.concatenate(cell_ids)
    segment_ids = np.concatenate(segment_ids)

    order = np.argsort(cell_ids, kind="stable")
    cell_ids, segment_ids = cell_ids[order], segment_ids[order]
    boundaries = np.flatnonzero(np.diff(cell_ids)) + 1
    pairs = []
    for members in np.split(segment_ids, boundaries):
        if len(members) > 1:
            first, second = np.triu_indices(len(members), k=1)
            pairs.append(np.stack([members[first], members[second]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(pairs, axis=0)


def is_self_intersecting(points: Iterable) -> bool:
    """Whether the closed polyline through ``points`` crosses or touches itself.

    Segment i runs from point i to point i+1 (the last one back to point 0).
    Segments are bucketed on a grid so only near neighbours are tested, which
    keeps a few thousand points fast. Neighbouring segments share an endpoint
    by construction; they only count as intersecting if one folds back over
    the other.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise CircuitError(f"points must have shape (N, 2), got {points.shape}")
    count = len(points)
    if count < 3:
        return False
    starts = points
    ends = np.roll(points, -1, axis=0)

    # A neighbour that doubles back along the same line overlaps its predecessor.
    incoming = starts - np.roll(starts, 1, axis=0)
    outgoing = ends - starts
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    dot = np.sum(incoming * outgoing, axis=1)
    if np.any((cross == 0.0) & (dot < 0.0)):
        return True

    pairs = _candidate_segment_pairs(starts, ends)
    first, second = pairs[:, 0], pairs[:, 1]
    neighbours = (second - first == 1) | ((first == 0) & (second == count - 1))
    first, second = first[~neighbours], second[~neighbours]
    if len(first) == 0:
        return False

    p1, p2, p3, p4 = starts[first], ends[first], starts[second], ends[second]
    d1 = _orientation(p3, p4, p1)
    d2 = _orientation(p3, p4, p2)
    d3 = _orientation(p1, p2, p3)
    d4 = _orientation(p1, p2, p4)
    crossing = (d1 * d2 < 0.0) & (d3 * d4 < 0.0)
    touching = (
        ((d1 == 0.0) & _on_segment(p3, p4, p1))
        | ((d2 == 0.0) & _on_segment(p3, p4, p2))
        | ((d3 == 0.0) & _on_segment(p1, p2, p3))
        | ((d4 == 0.0) & _on_segment(p1, p2, p4))
    )
    return bool(np.any(crossing | touching))


# --------------------------------------------------------------------------
# Built-in circuits: straights and corners
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Straight:
    """A straight; ``length_m`` None marks a closing straight, solved so the loop closes."""

    length_m: float | None


@dataclass(frozen=True)
class _Corner:
    """A constant-radius corner; positive angle turns left."""

    radius_m: float
    angle_deg: float


def _straight(length_m: float | None = None) -> _Straight:
    return _Straight(length_m)


def _left(radius_m: float, angle_deg: float) -> _Corner:
    return _Corner(radius_m, angle_deg)


def _right(radius_m: float, angle_deg: float) -> _Corner:
    return _Corner(radius_m, -angle_deg)


@dataclass(frozen=True)
class _CircuitSpec:
    """A built-in circuit as a circuit map: segments from the start/finish line, driven ccw.

    ``scale`` multiplies every length and radius: the one knob to retune the
    lap length. Exactly two straights are closing straights (length None);
    they must not be parallel.
    """

    segments: tuple
    scale: float = 1.0


# Length over which the curvature is eased between straights and corners (a
# clothoid-like transition): removes kinks in the curvature profile.
_EASING_M = 8.0
# Integration step for turning the curvature profile into a path.
_PROFILE_STEP_M = 0.25
# Control points for the spline are taken this far apart along the path.
_CONTROL_STEP_M = 4.0
# Closing straights start at this length before being solved for.
_INITIAL_CLOSING_LENGTH_M = 50.0
# A solved closing straight shorter than this would swallow its easing.
_MIN_CLOSING_LENGTH_M = 2.0 * _EASING_M


# Design rules (checked by test/test_circuits.py): radii >= 14 m before
# scaling (hairpins 14-16 m, chicanes >= 16 m), parallel legs >= 30 m apart,
# corner angles summing to +360 (driven ccw; "cw" reverses it on load).
# fmt: off
_SPECS: dict[str, _CircuitSpec] = {
    # A rounded loop with a few gentle curves.
    "simple_circuit": _CircuitSpec(scale=1.0, segments=(
        _straight(50),
        _left(40, 90),
        _straight(),
        _left(35, 70),
        _right(45, 40),
        _left(40, 80),
        _straight(60),
        _left(45, 70),
        _straight(40),
        _left(40, 90),
        _straight(),
    )),
    # Lots of corners of both signs, few straights.
    "many_curves": _CircuitSpec(scale=1.12, segments=(
        _straight(40),
        _left(30, 60),
        _right(25, 90),
        _left(25, 120),
        _straight(20),
        _left(25, 60),
        _right(25, 120),
        _left(25, 60),
        _straight(),
        _left(30, 90),
        _right(20, 90),
        _left(20, 180),
        _right(25, 90),
        _left(30, 60),
        _right(35, 60),
        _left(30, 90),
        _straight(30),
        _right(25, 60),
        _left(25, 120),
        _right(25, 60),
        _straight(30),
        _left(30, 90),
        _straight(),
    )),
    # After Circuit Gilles-Villeneuve: long and narrow, Senna S, chicanes,
    # the hairpin, the long back straight and the final chicane.
    "montreal": _CircuitSpec(scale=1.0, segments=(
        _straight(100),
        _left(16, 90),
        _straight(),
        _right(25, 40),
        _left(25, 130),
        _straight(120),
        _right(18, 45),
        _left(18, 45),
        _straight(150),
        _left(80, 20),
        _right(80, 20),
        _straight(150),
        _left(18, 50),
        _right(18, 50),
        _straight(100),
        _right(20, 40),
        _left(20, 40),
        _straight(200),
        _left(15, 180),
        _right(60, 30),
        _straight(80),
        _left(60, 30),
        _straight(),
        _right(20, 45),
        _left(20, 45),
        _straight(120),
    )),
    # After Circuit de Barcelona-Catalunya: long main straight, a long fast
    # sweeper, slow hairpins and a final chicane.
    "montmelo": _CircuitSpec(scale=1.0, segments=(
        _straight(100),
        _left(20, 90),
        _right(25, 45),
        _left(45, 135),
        _straight(50),
        _left(18, 90),
        _straight(30),
        _right(18, 90),
        _straight(40),
        _right(30, 60),
        _left(30, 60),
        _right(40, 45),
        _left(40, 45),
        _straight(50),
        _left(15, 90),
        _straight(),
        _left(35, 60),
        _right(16, 45),
        _left(16, 45),
        _left(30, 30),
        _straight(),
    )),
    # After the Nuerburgring GP circuit: tight first-corner complex, a flowing
    # section, the hairpin, the chicane and the last corner.
    "nurburgring": _CircuitSpec(scale=1.04, segments=(
        _straight(80),
        _left(14, 150),
        _right(20, 60),
        _left(25, 60),
        _straight(),
        _left(40, 60),
        _right(50, 40),
        _left(16, 140),
        _straight(),
        _right(50, 30),
        _left(50, 50),
        _right(16, 40),
        _left(16, 40),
        _left(35, 30),
        _straight(60),
    )),
    # A training circuit of long sweeping corners (radius 40-75 m, 80-150 degrees, both signs): the
    # other training circuits turn mostly at 20-35 m, and PilotNet trained on them alone held a steady
    # offset through long gentle corners (README, "Training data").
    "sweepers": _CircuitSpec(scale=1.0, segments=(
        _straight(),
        _left(60, 100),
        _right(45, 100),
        _left(50, 150),
        _straight(40),
        _left(75, 90),
        _right(55, 80),
        _left(40, 100),
        _straight(),
        _left(65, 100),
    )),
}
# fmt: on

BUILTIN_CIRCUITS = ("simple_circuit", "many_curves", "montreal", "montmelo", "nurburgring", "sweepers")


def _curvature_profile(segments: Iterable, scale: float, step_m: float) -> tuple[np.ndarray, float]:
    """Curvature sampled every ~``step_m``, eased at the junctions, and the lap length.

    Every straight must have a length (closing straights already solved).
    """
    lengths, curvatures = [], []
    for segment in segments:
        if isinstance(segment, _Straight):
            lengths.append(segment.length_m * scale)
            curvatures.append(0.0)
        else:
            radius = segment.radius_m * scale
            lengths.append(radius * math.radians(abs(segment.angle_deg)))
            curvatures.append(math.copysign(1.0 / radius, segment.angle_deg))
    # Cell averages of the exact profile (differences of the cumulative turning
    # angle), so corner angles are not rounded to the sampling grid: the loop
    # turns exactly 360 degrees and the closing solve stays smooth.
    boundaries = np.concatenate([[0.0], np.cumsum(lengths)])
    turned = np.concatenate([[0.0], np.cumsum(np.asarray(lengths) * np.asarray(curvatures))])
    sample_count = int(round(boundaries[-1] / step_m))
    cell_edges = np.linspace(0.0, boundaries[-1], sample_count + 1)
    profile = np.diff(np.interp(cell_edges, boundaries, turned)) / (boundaries[-1] / sample_count)

    # A periodic moving average turns each curvature step into a linear ramp
    # while keeping the total turning angle, so the loop still closes in heading.
    window = max(int(round(_EASING_M / step_m)), 1)
    padded = np.concatenate([profile[-window:], profile, profile[:window]])
    smoothed = np.convolve(padded, np.ones(window) / window, mode="same")
    return smoothed[window:-window], float(boundaries[-1])


def _integrate_profile(curvature: np.ndarray, total_length: float) -> np.ndarray:
    """Path (N, 2) starting at the origin heading +x, from its curvature samples."""
    step = total_length / len(curvature)
    heading = np.cumsum(curvature) * step - 0.5 * curvature * step  # midpoint of each step
    moves = step * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    return np.vstack([[0.0, 0.0], np.cumsum(moves, axis=0)])


def _trace_spec(spec: _CircuitSpec, closing_lengths: np.ndarray) -> np.ndarray:
    """Path of the spec with the closing straights set to ``closing_lengths`` (unscaled)."""
    lengths = iter(closing_lengths)
    segments = [
        _Straight(float(next(lengths))) if isinstance(s, _Straight) and s.length_m is None else s for s in spec.segments
    ]
    profile, total_length = _curvature_profile(segments, spec.scale, _PROFILE_STEP_M)
    return _integrate_profile(profile, total_length)


def _build_spec_control_points(name: str, spec: _CircuitSpec) -> np.ndarray:
    """Control points of a built-in circuit, with its closing straights solved."""
    turn = sum(s.angle_deg for s in spec.segments if isinstance(s, _Corner))
    if not math.isclose(abs(turn), 360.0, abs_tol=1e-9):
        raise AssertionError(f"built-in circuit {name!r} turns {turn} degrees in total, not 360")
    closing = [i for i, s in enumerate(spec.segments) if isinstance(s, _Straight) and s.length_m is None]
    if len(closing) != 2:
        raise AssertionError(f"built-in circuit {name!r} needs exactly 2 closing straights, has {len(closing)}")

    # Headings of the closing straights: lengthening one moves the end of the
    # path along its heading, so the closing gap is linear in their lengths.
    headings = []
    for index in closing:
        turned = sum(s.angle_deg for s in spec.segments[:index] if isinstance(s, _Corner))
        headings.append(math.radians(turned))
    directions = np.array([[math.cos(h), math.sin(h)] for h in headings]).T * spec.scale
    if abs(np.linalg.det(directions)) < 1e-3 * spec.scale**2:
        raise AssertionError(f"built-in circuit {name!r}: its closing straights are parallel")

    # Nearly linear (the easing shifts headings a little), so a few Newton
    # steps with the nominal headings converge.
    lengths = np.full(2, _INITIAL_CLOSING_LENGTH_M)
    for _ in range(20):
        path = _trace_spec(spec, lengths)
        gap = path[0] - path[-1]
        if np.linalg.norm(gap) < 1e-6:
            break
        lengths = lengths + np.linalg.solve(directions, gap)
    else:
        raise AssertionError(f"built-in circuit {name!r}: the closing straights did not converge")
    if np.any(lengths * spec.scale < _MIN_CLOSING_LENGTH_M):
        raise AssertionError(f"built-in circuit {name!r}: closing straights solved to {lengths} m")

    # Spread the last (sub-micrometre) closing error along the lap.
    path -= np.linspace(0.0, 1.0, len(path))[:, None] * (path[-1] - path[0])
    path = path[:-1]
    stride = max(int(round(_CONTROL_STEP_M / np.linalg.norm(path[1] - path[0]))), 1)
    return path[::stride]


@lru_cache(maxsize=None)
def _builtin_ccw(name: str, spacing_m: float) -> tuple[np.ndarray, float]:
    """The resampled ccw center line of a built-in circuit at scale 1 (cached)."""
    control_points = _build_spec_control_points(name, _SPECS[name])
    if _signed_area(control_points) < 0.0:
        control_points = _reverse_keeping_start(control_points)
    points, actual_spacing = _resample_closed_loop(control_points, spacing_m)
    points.setflags(write=False)
    return points, actual_spacing


# --------------------------------------------------------------------------
# CSV tracks
# --------------------------------------------------------------------------


def _read_track_csv(path: Path) -> np.ndarray:
    """Rows (x, y, w_right, w_left) of a TUM-format track file, validated."""
    if not path.exists():
        raise CircuitError(f"track file {path} does not exist")
    if not path.is_file():
        raise CircuitError(f"track file {path} is not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CircuitError(f"track file {path} could not be read: {error}") from error

    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [field.strip() for field in stripped.split(",")]
        if len(fields) != 4:
            raise CircuitError(
                f"track file {path}, line {line_number}: expected 4 comma-separated columns "
                f"(x_m,y_m,w_tr_right_m,w_tr_left_m), got {len(fields)}"
            )
        try:
            values = [float(field) for field in fields]
        except ValueError:
            raise CircuitError(
                f"track file {path}, line {line_number}: non-numeric value in {stripped!r} "
                "(a header line must start with '#')"
            ) from None
        if not all(math.isfinite(value) for value in values):
            raise CircuitError(f"track file {path}, line {line_number}: NaN or infinite value in {stripped!r}")
        if values[2] <= 0.0 or values[3] <= 0.0:
            raise CircuitError(
                f"track file {path}, line {line_number}: track widths must be positive, got {values[2]}, {values[3]}"
            )
        rows.append(values)
    if not rows:
        raise CircuitError(f"track file {path} holds no data rows")
    return np.asarray(rows, dtype=np.float64)


def _drop_consecutive_duplicates(rows: np.ndarray) -> np.ndarray:
    """Drop rows repeating the previous point, the last one included if it repeats the first."""
    steps = np.linalg.norm(np.diff(rows[:, :2], axis=0), axis=1)
    rows = rows[np.concatenate([[True], steps > DUPLICATE_TOLERANCE_M])]
    while len(rows) > 1 and np.linalg.norm(rows[-1, :2] - rows[0, :2]) <= DUPLICATE_TOLERANCE_M:
        rows = rows[:-1]
    return rows


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

    rows = _drop_consecutive_duplicates(_read_track_csv(path))
    if len(rows) < MIN_CSV_POINTS:
        raise CircuitError(f"track file {path}: {len(rows)} distinct points, at least {MIN_CSV_POINTS} are needed")

    # Checked in file units (metres) so validity does not depend on `scale`.
    points = rows[:, :2]
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    typical_step = float(np.median(steps))
    closing_gap = float(np.linalg.norm(points[-1] - points[0]))
    allowed_gap = max(MAX_CLOSING_GAP_STEPS * typical_step, MAX_CLOSING_GAP_M)
    if closing_gap > allowed_gap:
        raise CircuitError(
            f"track file {path}: not a closed loop: the last point is {closing_gap:.1f} m from the first "
            f"(at most {allowed_gap:.1f} m allowed: {MAX_CLOSING_GAP_STEPS:g} median steps or {MAX_CLOSING_GAP_M:g} m)"
        )
    if is_self_intersecting(points):
        raise CircuitError(f"track file {path}: the center line crosses itself")

    half_width = float(np.median(rows[:, 2] + rows[:, 3]) / 2.0) * scale
    control_points = points * scale
    if _signed_area(control_points) < 0.0:
        control_points = _reverse_keeping_start(control_points)
    centerline, actual_spacing = _resample_closed_loop(control_points, spacing_m)
    return _make_circuit(path.stem, centerline, half_width, direction, actual_spacing, str(path))


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


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


def _make_circuit(
    name: str, ccw_points: np.ndarray, half_width: float, direction: str, spacing: float, source: str
) -> Circuit:
    """Wrap a ccw center line, reversing it (same start point) for cw driving."""
    points = ccw_points if direction == "ccw" else _reverse_keeping_start(ccw_points)
    return Circuit(
        name=name,
        centerline=points,
        half_width_m=half_width,
        direction=direction,
        spacing_m=spacing,
        source=source,
    )


def circuit_names() -> list[str]:
    """Names of the built-in circuits."""
    return list(BUILTIN_CIRCUITS)


def load_circuit(name_or_path, direction: str = "ccw", scale: float = 1.0, spacing_m: float = 0.5) -> Circuit:
    """Load a built-in circuit by name, or a CSV track by path.

    Anything ending in ``.csv`` or naming an existing file is read as a CSV
    (see :func:`load_csv`). ``scale`` multiplies coordinates and road width
    (of built-ins too, though they are designed for scale 1).
    """
    direction = _check_direction(direction)
    scale = _check_positive_finite(scale, "scale")
    spacing_m = _check_positive_finite(spacing_m, "spacing_m")
    text = os.fspath(name_or_path)
    if text in BUILTIN_CIRCUITS:
        # Resample after scaling so the requested spacing holds at any scale.
        points, spacing = _builtin_ccw(text, spacing_m / scale)
        return _make_circuit(text, points * scale, BUILTIN_HALF_WIDTH_M * scale, direction, spacing * scale, "builtin")
    if text.lower().endswith(".csv") or Path(text).is_file():
        return load_csv(text, direction=direction, scale=scale, spacing_m=spacing_m)
    raise CircuitError(
        f"unknown circuit {text!r}: valid names are {', '.join(BUILTIN_CIRCUITS)} "
        "(or give the path of a .csv track file)"
    )


def describe_circuits() -> list[dict]:
    """One summary row per built-in circuit (for ``pilotnet-brain circuits``)."""
    rows = []
    for name in BUILTIN_CIRCUITS:
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
