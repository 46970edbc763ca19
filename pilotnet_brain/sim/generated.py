"""Random valid circuits without limit: a seed gives one closed circuit, always the same.

A circuit named ``gen:SEED`` (the seed split into training and evaluation seeds in
:mod:`builtin_circuits`) is a circuit map in the language of :mod:`track_spec`, on the built-in
circuits' road: a main straight, then corners, long sweepers, hairpins, S-bends and chicanes in random
order, straights between some of them, turning +360 degrees in all (driven ccw; "cw" reverses it on
load). Two junctions, picked where the loop can close, get the closing straights.

A candidate is kept only if its smoothed center line (the line that is driven) passes stricter rules
than :func:`circuits.check_drivable`: no bend tighter than MIN_RADIUS_M, a lap of LAP_LENGTH_M, parts of
the circuit that are far apart along the lap at least MIN_SEPARATION_M apart (so the road never
overlaps itself and the camera sees one road at a time, as on the built-ins). Otherwise the next
candidate is drawn from the same random stream, so a seed always gives the same circuit. The stream is
Python's ``random.Random(seed).random()``, whose sequence Python keeps across versions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from pilotnet_brain.errors import CircuitError
from pilotnet_brain.sim.builtin_circuits import GENERATED_PREFIX
from pilotnet_brain.sim.geometry import is_self_intersecting, loop_curvature, resample_closed_loop, signed_area
from pilotnet_brain.sim.track_spec import CircuitSpec, Corner, Straight, spec_control_points

__all__ = [
    "LAP_LENGTH_M",
    "MIN_RADIUS_M",
    "MIN_SEPARATION_M",
    "GeneratedLayout",
    "corner_count",
    "generated_layout",
    "generated_spec",
]

#: Tightest bend of a generated circuit's driven line: the built-ins' design rule (radii >= 14 m; the
#: Nuerburgring hairpin is 13.7 m once smoothed). Not the car's limit (at the 7.5 m/s the expert takes
#: such a bend, the 3 rad/s yaw rate allows 2.5 m) but the tightest the expert is known to complete.
MIN_RADIUS_M = 14.0
#: Parts of the lap further apart along it than half a circle of this diameter are at least this far
#: apart: the built-ins' rule for parallel legs (a hairpin's legs may be that close, not closer).
MIN_SEPARATION_M = 30.0
#: Lap lengths, as the built-in circuits' (544-1905 m).
LAP_LENGTH_M = (500.0, 2000.0)
#: Candidates tried per seed before giving up (a few dozen suffice; exhausting them is a bug).
MAX_CANDIDATES = 2000

# Corner shapes (radius m, angle deg). Radii are drawn log-uniformly so tight corners are as common as
# wide ones; design radii keep a margin over MIN_RADIUS_M for the spline's overshoot at the apex.
_CORNER_RADIUS = (MIN_RADIUS_M + 0.5, 45.0)
_CORNER_ANGLE = (40.0, 120.0)
_SWEEPER_RADIUS = (45.0, 140.0)
_SWEEPER_ANGLE = (25.0, 100.0)
_HAIRPIN_RADIUS = (MIN_SEPARATION_M / 2 + 0.5, 19.0)  # its legs end up MIN_SEPARATION_M apart or more
_HAIRPIN_ANGLE = (150.0, 190.0)
_S_BEND_RADIUS = (20.0, 70.0)
_S_BEND_ANGLE = (25.0, 80.0)
_CHICANE_RADIUS = (MIN_RADIUS_M + 1.0, 24.0)
_CHICANE_ANGLE = (20.0, 50.0)
# Features per lap and how often each kind is drawn.
_FEATURE_COUNT = (5, 13)
_FEATURE_WEIGHTS = {"corner": 4, "sweeper": 3, "hairpin": 1.5, "s_bend": 2, "chicane": 1}
# Some circuits flow, like the built-in `sweepers`: no hairpins or chicanes, and corners and S-bends no
# tighter than this, so a lap's tightest bend ranges from MIN_RADIUS_M to several times it.
_FLOWING_SHARE = 0.25
_FLOWING_WEIGHTS = {"corner": 3, "sweeper": 5, "s_bend": 2}
_FLOWING_MIN_RADIUS_M = 30.0
# Share of single corners turning right (the loop turns left overall).
_RIGHT_SHARE = {"corner": 0.3, "sweeper": 0.3, "hairpin": 0.15}
_STRAIGHT_CHANCE = 0.55  # a straight between two features
_STRAIGHT_M = (15.0, 160.0)
_MAIN_STRAIGHT_M = (50.0, 180.0)
_CHICANE_GAP_M = (0.0, 15.0)  # straight between a chicane's two corners (0: none)
# The left-turning corners and sweepers are scaled to make the lap turn exactly 360 degrees: within these
# factors, and never past the largest angle a hairpin may have.
_TURN_SCALE = (0.6, 1.6)
# Closing straights: long enough for the easing of their corners (track_spec needs 16 m), at most a
# long main straight; their two directions at least this far from parallel.
_CLOSING_M = (25.0, 250.0)
_MIN_CLOSING_SINE = 0.3
# Spacing of the center line the rules are checked on (the simulator's default).
_CHECK_SPACING_M = 0.5
_SEPARATION_STRIDE = 4  # separation is checked on every 4th point (2 m apart: far below 30 m)


@dataclass(frozen=True)
class GeneratedLayout:
    """What a seed gave: the circuit map, and the candidate it is (1 = the first one drawn)."""

    seed: int
    spec: CircuitSpec
    candidate: int


class _Draws:
    """Uniform draws from Python's random() alone (its sequence for an int seed is stable across versions)."""

    def __init__(self, seed: int):
        self._random = random.Random(seed)

    def uniform(self, low_high: tuple[float, float]) -> float:
        low, high = low_high
        return low + (high - low) * self._random.random()

    def log_uniform(self, low_high: tuple[float, float]) -> float:
        low, high = low_high
        return low * (high / low) ** self._random.random()

    def chance(self, probability: float) -> bool:
        return self._random.random() < probability

    def index(self, count: int) -> int:
        return min(int(self._random.random() * count), count - 1)

    def integer(self, low_high: tuple[int, int]) -> int:
        low, high = low_high
        return low + self.index(high - low + 1)

    def weighted(self, weights: dict[str, float]) -> str:
        target = self._random.random() * sum(weights.values())
        for name, weight in weights.items():
            target -= weight
            if target < 0.0:
                return name
        return name


def _feature(kind: str, draws: _Draws, min_radius_m: float) -> list:
    """The segments of one feature, radii from at least ``min_radius_m``; single corners turn left unless
    drawn right (sign applied here)."""

    def radius(radius_range: tuple[float, float]) -> float:
        return draws.log_uniform((max(radius_range[0], min_radius_m), radius_range[1]))

    if kind in _RIGHT_SHARE:
        radius_range, angle_range = {
            "corner": (_CORNER_RADIUS, _CORNER_ANGLE),
            "sweeper": (_SWEEPER_RADIUS, _SWEEPER_ANGLE),
            "hairpin": (_HAIRPIN_RADIUS, _HAIRPIN_ANGLE),
        }[kind]
        corner_radius = radius(radius_range)
        angle = draws.uniform(angle_range)
        return [Corner(corner_radius, -angle if draws.chance(_RIGHT_SHARE[kind]) else angle)]
    sign = 1.0 if draws.chance(0.5) else -1.0
    if kind == "s_bend":  # two corners of opposite hand, each its own radius and angle
        first = Corner(radius(_S_BEND_RADIUS), sign * draws.uniform(_S_BEND_ANGLE))
        return [first, Corner(radius(_S_BEND_RADIUS), -sign * draws.uniform(_S_BEND_ANGLE))]
    # A chicane: a quick jink of equal and opposite angles, so it leaves in the heading it came in.
    chicane_radius, angle = radius(_CHICANE_RADIUS), draws.uniform(_CHICANE_ANGLE)
    gap = draws.uniform(_CHICANE_GAP_M)
    middle = [Straight(gap)] if gap >= 1.0 else []
    return [Corner(chicane_radius, sign * angle), *middle, Corner(chicane_radius, -sign * angle)]


def _turn_deg(segments: list) -> float:
    return sum(segment.angle_deg for segment in segments if isinstance(segment, Corner))


def _close_turning(kinds: list[str], features: list[list]) -> list[list] | None:
    """Scale the left-turning corners and sweepers so the lap turns exactly +360 degrees (None: they cannot);
    hairpins keep their angle."""
    free = [i for i, kind in enumerate(kinds) if kind in ("corner", "sweeper") and features[i][0].angle_deg > 0.0]
    if not free:
        return None
    fixed_turn = sum(_turn_deg(f) for i, f in enumerate(features) if i not in free)
    free_turn = sum(features[i][0].angle_deg for i in free)
    factor = (360.0 - fixed_turn) / free_turn
    if not (_TURN_SCALE[0] <= factor <= _TURN_SCALE[1]):
        return None
    closed = list(features)
    for i in free:
        closed[i] = [Corner(features[i][0].radius_m, features[i][0].angle_deg * factor)]
    last = free[-1]  # takes the rounding, so the angles sum to 360 exactly
    others = sum(_turn_deg(f) for i, f in enumerate(closed) if i != last)
    closed[last] = [Corner(closed[last][0].radius_m, 360.0 - others)]
    if max(closed[i][0].angle_deg for i in free) > _HAIRPIN_ANGLE[1]:
        return None
    return closed


def _nominal_walk(segments: list) -> tuple[np.ndarray, list[float], float]:
    """End point, heading before each segment (radians) and length of the open chain, easing ignored."""
    position, heading, headings, length = np.zeros(2), 0.0, [], 0.0
    for segment in segments:
        headings.append(heading)
        if isinstance(segment, Straight):
            position = position + segment.length_m * np.array([math.cos(heading), math.sin(heading)])
            length += segment.length_m
            continue
        curvature = math.copysign(1.0 / segment.radius_m, segment.angle_deg)
        turn = math.radians(segment.angle_deg)
        position = position + np.array(
            [
                (math.sin(heading + turn) - math.sin(heading)) / curvature,
                (math.cos(heading) - math.cos(heading + turn)) / curvature,
            ]
        )
        heading += turn
        length += segment.radius_m * abs(turn)
    return position, headings, length


def _place_closing_straights(segments: list, draws: _Draws) -> list | None:
    """The segments with two closing straights inserted where, lengthened, they close the loop with lengths
    in _CLOSING_M (one such pair drawn at random); None if no junction pair can."""
    end, headings, _ = _nominal_walk(segments)
    directions = np.array([[math.cos(h), math.sin(h)] for h in headings])
    pairs = []
    for first in range(len(segments)):
        for second in range(first + 1, len(segments)):
            matrix = np.column_stack([directions[first], directions[second]])
            if abs(np.linalg.det(matrix)) < _MIN_CLOSING_SINE:
                continue
            lengths = np.linalg.solve(matrix, -end)
            if np.all((lengths >= _CLOSING_M[0]) & (lengths <= _CLOSING_M[1])):
                pairs.append((first, second))
    if not pairs:
        return None
    first, second = pairs[draws.index(len(pairs))]
    return [*segments[:first], Straight(None), *segments[first:second], Straight(None), *segments[second:]]


def _draw_candidate(draws: _Draws) -> CircuitSpec | None:
    """One random circuit map, or None when the draw cannot close (the caller draws again)."""
    flowing = draws.chance(_FLOWING_SHARE)
    weights, min_radius_m = (_FLOWING_WEIGHTS, _FLOWING_MIN_RADIUS_M) if flowing else (_FEATURE_WEIGHTS, 0.0)
    count = draws.integer(_FEATURE_COUNT)
    kinds = [draws.weighted(weights) for _ in range(count)]
    features = _close_turning(kinds, [_feature(kind, draws, min_radius_m) for kind in kinds])
    if features is None:
        return None
    segments = [Straight(draws.uniform(_MAIN_STRAIGHT_M))]
    for feature in features:
        segments.extend(feature)
        if draws.chance(_STRAIGHT_CHANCE):
            segments.append(Straight(draws.log_uniform(_STRAIGHT_M)))
    placed = _place_closing_straights(segments, draws)
    if placed is None:
        return None
    return CircuitSpec(segments=tuple(placed))


def _separation_m(points: np.ndarray, spacing_m: float) -> float:
    """Smallest distance between parts of the loop more than half a circle of MIN_SEPARATION_M apart along it."""
    sampled = points[::_SEPARATION_STRIDE]
    step = spacing_m * _SEPARATION_STRIDE
    pairs = cKDTree(sampled).query_pairs(MIN_SEPARATION_M, output_type="ndarray")
    if len(pairs) == 0:
        return math.inf
    apart = np.abs(pairs[:, 0] - pairs[:, 1])
    along = np.minimum(apart, len(sampled) - apart) * step
    far = pairs[along > math.pi * MIN_SEPARATION_M / 2]
    if len(far) == 0:
        return math.inf
    return float(np.min(np.linalg.norm(sampled[far[:, 0]] - sampled[far[:, 1]], axis=1)))


def _acceptable(name: str, spec: CircuitSpec) -> bool:
    """Whether the candidate's smoothed center line keeps every rule (module docstring)."""
    _, _, nominal_length = _nominal_walk([s for s in spec.segments if s != Straight(None)])
    if nominal_length > LAP_LENGTH_M[1]:
        return False  # too long even before its closing straights
    control_points = spec_control_points(name, spec)
    if signed_area(control_points) <= 0.0:
        return False
    points, spacing = resample_closed_loop(control_points, _CHECK_SPACING_M)
    length = spacing * len(points)
    if not (LAP_LENGTH_M[0] <= length <= LAP_LENGTH_M[1]):
        return False
    if np.max(np.abs(loop_curvature(points))) * MIN_RADIUS_M > 1.0:
        return False
    if is_self_intersecting(points):
        return False
    return _separation_m(points, spacing) >= MIN_SEPARATION_M


@lru_cache(maxsize=256)
def generated_layout(seed: int) -> GeneratedLayout:
    """The circuit map of ``gen:SEED`` and which candidate it was (deterministic: same seed, same map)."""
    name = f"{GENERATED_PREFIX}{seed}"
    draws = _Draws(seed)
    for candidate in range(1, MAX_CANDIDATES + 1):
        spec = _draw_candidate(draws)
        if spec is not None and _acceptable(name, spec):
            return GeneratedLayout(seed, spec, candidate)
    raise CircuitError(f"generated circuit {name!r}: no valid circuit in {MAX_CANDIDATES} candidates")


def generated_spec(seed: int) -> CircuitSpec:
    """The circuit map of ``gen:SEED``: closing straights still open (``spec_control_points`` solves them)."""
    return generated_layout(seed).spec


def corner_count(spec: CircuitSpec) -> int:
    """How many corners a circuit map has (each corner of an S-bend or chicane counts)."""
    return sum(isinstance(segment, Corner) for segment in spec.segments)
