"""Geometry of closed polylines: step lengths, orientation, even arc-length resampling, self-intersection.

Pure numpy/scipy. A closed polyline is an (N, 2) array whose last point is not repeated: the closing
step runs from point N-1 back to point 0.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from scipy.interpolate import CubicSpline

from pilotnet_brain.errors import CircuitError

__all__ = [
    "closed_step_lengths",
    "is_self_intersecting",
    "loop_curvature",
    "resample_closed_loop",
    "reverse_keeping_start",
    "signed_area",
    "MAX_RESAMPLE_POINTS",
]

#: Most spline samples one resampling may evaluate (each a few 16-byte arrays: ~0.5 GB at the bound).
MAX_RESAMPLE_POINTS = 8_000_000


def closed_step_lengths(points: np.ndarray) -> np.ndarray:
    """Length of each step of the closed polyline, closing step last."""
    return np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)


def signed_area(points: np.ndarray) -> float:
    """Shoelace area of the closed polygon; positive when counter-clockwise."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def reverse_keeping_start(points: np.ndarray) -> np.ndarray:
    """Drive the loop the other way round from the same start point."""
    return np.concatenate([points[:1], points[:0:-1]])


def loop_curvature(points: np.ndarray) -> np.ndarray:
    """Signed curvature (1/m) of a closed polyline at each point, positive turning left: the circle
    through the point and its two neighbours (exact for points evenly spaced on a circle)."""
    prev_pts = np.roll(points, 1, axis=0)
    next_pts = np.roll(points, -1, axis=0)
    incoming = points - prev_pts
    outgoing = next_pts - points
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    denominator = (
        np.linalg.norm(incoming, axis=1)
        * np.linalg.norm(outgoing, axis=1)
        * np.linalg.norm(next_pts - prev_pts, axis=1)
    )
    return 2.0 * cross / denominator


def resample_closed_loop(control_points: np.ndarray, spacing_m: float) -> tuple[np.ndarray, float]:
    """Periodic cubic spline through the control points, resampled at even arc length.

    Returns (points, actual_spacing). The spline is parametrised by
    cumulative chord length; arc length is then measured on a dense
    evaluation of it, so the output steps are equal to ~1e-6 relative.
    Raises CircuitError, before allocating, when that evaluation would take more
    than ``MAX_RESAMPLE_POINTS`` samples (a huge loop, or control points nearly on top of each other).
    """
    closed = np.vstack([control_points, control_points[:1]])
    chord = np.concatenate([[0.0], np.cumsum(closed_step_lengths(control_points))])
    shortest_step = float(np.min(np.diff(chord)))
    if not (math.isfinite(chord[-1]) and math.isfinite(spacing_m) and spacing_m > 0.0):
        raise CircuitError(f"the loop's coordinates are not finite numbers (length {chord[-1]}, spacing {spacing_m})")
    if shortest_step <= 0.0:
        index = int(np.argmin(np.diff(chord)))
        raise CircuitError(f"control points {index} and {(index + 1) % len(control_points)} coincide")

    # Dense enough that chord and arc agree far below a millimetre.
    dense_step = min(spacing_m, shortest_step) / 8.0
    dense_estimate = max(chord[-1] / dense_step, 8.0 * len(control_points))
    if dense_estimate > MAX_RESAMPLE_POINTS:
        if chord[-1] / spacing_m * 8.0 > MAX_RESAMPLE_POINTS:
            cause = f"the loop is {chord[-1]:.4g} m long, resampled every {spacing_m:.4g} m"
        else:
            cause = f"two control points are only {shortest_step:.3g} m apart"
        raise CircuitError(
            f"too large to resample: {cause}, it needs {dense_estimate:.3g} spline samples, "
            f"more than the {MAX_RESAMPLE_POINTS:,} allowed"
        )
    spline = CubicSpline(chord, closed, bc_type="periodic")
    dense_count = max(int(math.ceil(chord[-1] / dense_step)), 8 * len(control_points))
    dense_param = np.linspace(0.0, chord[-1], dense_count + 1)
    dense_points = spline(dense_param)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense_points, axis=0), axis=1))])

    total_length = arc[-1]
    count = max(int(round(total_length / spacing_m)), 3)
    target_arc = np.arange(count) * (total_length / count)
    points = spline(np.interp(target_arc, arc, dense_param))
    return points, float(np.sum(closed_step_lengths(points)) / count)


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
