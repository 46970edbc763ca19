"""The circuit-map language of the built-in circuits: straights and constant-radius corners.

A :class:`CircuitSpec` lists segments from the start/finish line. :func:`spec_control_points` eases
the curvature at every straight/corner junction (a clothoid-like ramp, so the road has no kinks),
integrates the profile into a path, solves the two "closing" straights so the loop closes exactly,
and returns control points for the periodic spline of :func:`geometry.resample_closed_loop`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = ["CircuitSpec", "Corner", "Straight", "left", "right", "spec_control_points", "straight"]


@dataclass(frozen=True)
class Straight:
    """A straight; ``length_m`` None marks a closing straight, solved so the loop closes."""

    length_m: float | None


@dataclass(frozen=True)
class Corner:
    """A constant-radius corner; positive angle turns left."""

    radius_m: float
    angle_deg: float


def straight(length_m: float | None = None) -> Straight:
    return Straight(length_m)


def left(radius_m: float, angle_deg: float) -> Corner:
    return Corner(radius_m, angle_deg)


def right(radius_m: float, angle_deg: float) -> Corner:
    return Corner(radius_m, -angle_deg)


@dataclass(frozen=True)
class CircuitSpec:
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
# The profile's sample count follows the lap length, so the closing gap jumps (by under a millimetre)
# where it changes; a root on such a jump is never within 1e-6 m, the best iterate within this is taken.
_CLOSE_ENOUGH_M = 1e-2


def _curvature_profile(segments: Iterable, scale: float, step_m: float) -> tuple[np.ndarray, float]:
    """Curvature sampled every ~``step_m``, eased at the junctions, and the lap length.

    Every straight must have a length (closing straights already solved).
    """
    lengths, curvatures = [], []
    for segment in segments:
        if isinstance(segment, Straight):
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


def _trace_spec(spec: CircuitSpec, closing_lengths: np.ndarray) -> np.ndarray:
    """Path of the spec with the closing straights set to ``closing_lengths`` (unscaled)."""
    lengths = iter(closing_lengths)
    segments = [
        Straight(float(next(lengths))) if isinstance(s, Straight) and s.length_m is None else s for s in spec.segments
    ]
    profile, total_length = _curvature_profile(segments, spec.scale, _PROFILE_STEP_M)
    return _integrate_profile(profile, total_length)


def spec_control_points(name: str, spec: CircuitSpec) -> np.ndarray:
    """Control points of a built-in circuit, with its closing straights solved."""
    turn = sum(s.angle_deg for s in spec.segments if isinstance(s, Corner))
    if not math.isclose(abs(turn), 360.0, abs_tol=1e-9):
        raise AssertionError(f"built-in circuit {name!r} turns {turn} degrees in total, not 360")
    closing = [i for i, s in enumerate(spec.segments) if isinstance(s, Straight) and s.length_m is None]
    if len(closing) != 2:
        raise AssertionError(f"built-in circuit {name!r} needs exactly 2 closing straights, has {len(closing)}")

    # Headings of the closing straights: lengthening one moves the end of the
    # path along its heading, so the closing gap is linear in their lengths.
    headings = []
    for index in closing:
        turned = sum(s.angle_deg for s in spec.segments[:index] if isinstance(s, Corner))
        headings.append(math.radians(turned))
    directions = np.array([[math.cos(h), math.sin(h)] for h in headings]).T * spec.scale
    if abs(np.linalg.det(directions)) < 1e-3 * spec.scale**2:
        raise AssertionError(f"built-in circuit {name!r}: its closing straights are parallel")

    # Nearly linear (the easing shifts headings a little), so a few Newton
    # steps with the nominal headings converge.
    lengths = np.full(2, _INITIAL_CLOSING_LENGTH_M)
    best = (math.inf, lengths, None)
    for _ in range(20):
        path = _trace_spec(spec, lengths)
        gap = path[0] - path[-1]
        best = min(best, (float(np.linalg.norm(gap)), lengths, path), key=lambda item: item[0])
        if np.linalg.norm(gap) < 1e-6:
            break
        lengths = lengths + np.linalg.solve(directions, gap)
    else:
        if best[0] > _CLOSE_ENOUGH_M:
            raise AssertionError(f"built-in circuit {name!r}: the closing straights did not converge")
        _, lengths, path = best
    if np.any(lengths * spec.scale < _MIN_CLOSING_LENGTH_M):
        raise AssertionError(f"built-in circuit {name!r}: closing straights solved to {lengths} m")

    # Spread the last (sub-millimetre) closing error along the lap.
    path -= np.linspace(0.0, 1.0, len(path))[:, None] * (path[-1] - path[0])
    path = path[:-1]
    stride = max(int(round(_CONTROL_STEP_M / np.linalg.norm(path[1] - path[0]))), 1)
    return path[::stride]
