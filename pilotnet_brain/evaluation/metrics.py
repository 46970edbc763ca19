"""Driving metrics over a recorded run, after JdeRobot BehaviorMetrics.

Pure functions over arrays: no ROS, no simulator, no plotting imports, so this
module can score a run offline and imports quickly.  The definitions follow
BehaviorMetrics' ``utils/metrics_gazebo.py`` where that is sound, and say so
where they deliberately differ (clock truncation, NaN on empty input,
point-to-sample instead of point-to-segment distances).

Every figure is documented in the docstring of the function that computes it.
``compute_metrics`` gathers them under the stable keys in ``METRIC_KEYS``.
"""

from __future__ import annotations

import csv
import io
import math
import os

import numpy as np
from scipy.spatial import cKDTree

from pilotnet_brain.jsonio import write_json_atomic, write_text_atomic
from pilotnet_brain.sim.record import RunRecord

__all__ = [
    "RunRecord",
    "METRIC_KEYS",
    "DEFAULT_CHECKPOINT_RADIUS_M",
    "completed_distance",
    "average_speed",
    "checkpoint_progress",
    "percentage_completed",
    "lap_time",
    "point_to_polyline_distance",
    "position_deviation",
    "mean_inference_time_ms",
    "compute_metrics",
    "write_metrics_json",
    "metrics_table",
    "write_table",
]

#: Radius (m) within which a reference checkpoint counts as reached (BehaviorMetrics uses 5 m).
DEFAULT_CHECKPOINT_RADIUS_M = 5.0

#: Inference samples dropped at each end before averaging (warm-up and shutdown outliers).
INFERENCE_TRIM = 10


#: Stable, documented JSON interface.  ``compute_metrics`` may append extra keys
#: after these (``end_reason``, ``average_speed_bm_mps``, ``distance_pct_of_lap``, ...)
#: but never removes or renames these.
METRIC_KEYS = (
    "circuit",
    "direction",
    "brain",
    "completed_pct",
    "completed_distance_m",
    "average_speed_mps",
    "lap_time_s",
    "position_deviation_mae_m",
    "position_deviation_total_m",
    "position_deviation_score",
    "off_track_events",
    "brain_iteration_frequency_hz",
    "mean_inference_time_ms",
    "frame_rate_hz",
    "sim_time_s",
    "wall_time_s",
)


# --------------------------------------------------------------------------- helpers


def _as_points(a) -> np.ndarray:
    """Return ``a`` as a float (N, 2) array; an empty input becomes shape (0, 2)."""
    pts = np.asarray(a, dtype=float)
    if pts.size == 0:
        return np.zeros((0, 2))
    return pts.reshape(-1, 2)


def _as_vector(a) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1)


def _finite_or_none(x):
    """Plain Python float, or None for None/NaN/inf (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _segment_distances(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point ``p[i]`` to the segment ``a[i]``-``b[i]`` (all (N, 2))."""
    ab = b - a
    length_sq = np.einsum("ij,ij->i", ab, ab)
    # Zero-length segments (car standing still) degenerate to their endpoint.
    safe = np.where(length_sq > 0.0, length_sq, 1.0)
    s = np.clip(np.einsum("ij,ij->i", p - a, ab) / safe, 0.0, 1.0)
    s = np.where(length_sq > 0.0, s, 0.0)
    closest = a + s[:, None] * ab
    return np.hypot(*(closest - p).T)


# --------------------------------------------------------------------------- distance / speed


def completed_distance(xy) -> float:
    """Completed distance (m): the sum of the straight steps between consecutive
    odometry positions, i.e. the length of the driven polyline.

    Fewer than two samples give 0.0.
    """
    pts = _as_points(xy)
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def average_speed(xy, t, truncate_clock: bool = False) -> float:
    """Average speed (m/s) = completed distance / elapsed simulated time ``t[-1] - t[0]``.

    BehaviorMetrics reads only the whole-second part of the start and end clock
    stamps, which on a 60 s lap can bias the speed by a few percent; we use the
    exact times.  ``truncate_clock=True`` reproduces BehaviorMetrics' figure
    (``floor(t[-1]) - floor(t[0])`` seconds) for comparison with its results.

    Returns 0.0 when there are fewer than two samples or no elapsed time
    (speed is not defined there; 0.0 keeps the output numeric and NaN-free).
    """
    pts = _as_points(xy)
    times = _as_vector(t)
    if len(pts) < 2 or len(times) < 2:
        return 0.0
    if truncate_clock:
        elapsed = math.floor(times[-1]) - math.floor(times[0])
    else:
        elapsed = float(times[-1] - times[0])
    if elapsed <= 0.0:
        return 0.0
    return completed_distance(pts) / elapsed


# --------------------------------------------------------------------------- checkpoints / lap


#: Widest a checkpoint gate reaches on each side of the reference (m): wider than any road driven here
#: (the real tracks' half width plus the simulator's 1 m off-track margin is under 8 m at scale 1).
MAX_GATE_HALF_WIDTH_M = 20.0


class _Gates:
    """The checkpoint gates of a closed reference: at each point, the segment of its normal reaching,
    on each side, half way to the nearest other part of the track (at most MAX_GATE_HALF_WIDTH_M).

    Half way is where a position stops being nearer to this part of the track than to another one
    (the medial axis), so a gate never reaches a neighbouring road however close it runs. "Another
    part" is a reference point whose distance along the track exceeds pi/2 times its straight-line
    distance (plus two steps): on a bend of radius R the nearest such point is just past the
    opposite side, so gates reach R inwards. Built lazily: only gates the walk needs are measured.
    """

    def __init__(self, reference: np.ndarray):
        self.reference = reference
        chords = np.roll(reference, -1, axis=0) - np.roll(reference, 1, axis=0)
        norms = np.hypot(*chords.T)
        self.tangent = chords / np.where(norms > 0, norms, 1.0)[:, None]
        steps = np.hypot(*(np.roll(reference, -1, axis=0) - reference).T)
        self.arc = np.concatenate([[0.0], np.cumsum(steps)[:-1]])
        self.length = float(steps.sum())
        self.slack = 2.0 * float(np.median(steps)) if len(steps) else 0.0
        self._tree = None
        self._half: dict[int, float] = {}

    def half_width(self, k: int) -> float:
        if k not in self._half:
            if self._tree is None:
                self._tree = cKDTree(self.reference)
            near = np.asarray(self._tree.query_ball_point(self.reference[k], 2.0 * MAX_GATE_HALF_WIDTH_M), dtype=int)
            chord = np.hypot(*(self.reference[near] - self.reference[k]).T)
            along = np.abs(self.arc[near] - self.arc[k])
            along = np.minimum(along, self.length - along)
            other = chord[along > 0.5 * math.pi * chord + self.slack]
            self._half[k] = (
                min(0.5 * float(other.min()), MAX_GATE_HALF_WIDTH_M) if len(other) else MAX_GATE_HALF_WIDTH_M
            )
        return self._half[k]

    def crossed(self, k: int, a, b, sign: int) -> bool:
        """Whether the step a -> b crosses gate k driving in the walk's direction (``sign`` +1/-1)."""
        cx, cy = self.reference[k]
        tx, ty = self.tangent[k] * sign
        before = (a[0] - cx) * tx + (a[1] - cy) * ty
        after = (b[0] - cx) * tx + (b[1] - cy) * ty
        if not (before < 0.0 <= after):
            return False
        f = before / (before - after)
        qx, qy = a[0] + f * (b[0] - a[0]) - cx, a[1] + f * (b[1] - a[1]) - cy
        return abs(qx * ty - qy * tx) <= self.half_width(k)


def _walk_checkpoints(pts: np.ndarray, reference: np.ndarray, order: np.ndarray, radius_m: float, gates, sign: int):
    """Count how many checkpoints of ``order`` the car reaches, in order.

    A checkpoint is reached when it is within ``radius_m`` of the car's current
    position (BehaviorMetrics' rule), or when the car's last step crosses its
    gate (see ``_Gates``): a car on a road wider than ``radius_m`` can pass a
    checkpoint farther away than that, and must not be stuck there for the rest
    of the lap.  Only the next one in order can be reached, so skipping a
    stretch of track (a shortcut, a teleport) stops progress there.  Several
    checkpoints can be reached at one sample (dense reference, fast car).

    Returns (reached indices, sample of each, whether each was reached through its gate).
    """
    radius_sq = radius_m * radius_m
    reached: list[int] = []
    at_sample: list[int] = []
    through_gate: list[bool] = []
    k = 0
    n = len(order)
    for i, (x, y) in enumerate(pts):
        while k < n:
            target = int(order[k])
            cx, cy = reference[target]
            if (cx - x) ** 2 + (cy - y) ** 2 <= radius_sq:
                through_gate.append(False)
            elif i > 0 and gates.crossed(target, pts[i - 1], pts[i], sign):
                through_gate.append(True)
            else:
                break
            reached.append(target)
            at_sample.append(i)
            k += 1
        if k == n:
            break
    return reached, at_sample, through_gate


def _best_walk(pts: np.ndarray, ref: np.ndarray, radius_m: float):
    """The walk (reached, at_sample, through_gate) of the direction reaching more checkpoints; see checkpoint_progress."""
    n_ref = len(ref)
    start = int(np.argmin(np.hypot(*(ref - pts[0]).T)))
    steps = np.arange(1, n_ref + 1)
    gates = _Gates(ref)
    best = ([], [], [])
    for sign in (1, -1):
        order = (start + sign * steps) % n_ref
        walk = _walk_checkpoints(pts, ref, order, radius_m, gates, sign)
        if len(walk[0]) > len(best[0]):
            best = walk
    return best


def checkpoint_progress(xy, reference, radius_m: float = DEFAULT_CHECKPOINT_RADIUS_M):
    """Walk the reference checkpoints the car reaches, in driving order.

    The walk starts at the reference point nearest the car's first position
    (the "start point", not necessarily reference point 0) and its targets are
    the following K reference points, wrapping around, so the K-th and last
    target is the start point again: reaching all K means a full lap.  Car
    samples are visited in time order; at each one, while the NEXT target is
    within ``radius_m`` of the car, or the car's last step crossed the
    target's gate (the normal to the reference there, reaching half way to any
    other part of the track: see ``_Gates``), it is counted and the walk
    advances.  Progress is thus tracked along the reference, in order: a
    nearby stretch of the track further along never counts before the road
    in between, and a car wide of the 5 m radius on a broad road is not stuck.

    The walk is done for both directions of the reference (the car may drive
    the circuit against the reference's order) and the direction reaching more
    checkpoints wins (ties: the reference's own order).

    Note the counts start above zero: the targets already within ``radius_m``
    of the start are reached at sample 0, as in BehaviorMetrics.

    Returns ``(reached_count, reached_indices_in_order, sample_index_of_each)``:
    the number of checkpoints reached, their reference indices in the order
    reached, and for each the index of the odometry sample that reached it.
    """
    pts = _as_points(xy)
    ref = _as_points(reference)
    if len(pts) == 0 or len(ref) == 0:
        return 0, [], []
    reached, at_sample, _ = _best_walk(pts, ref, radius_m)
    return len(reached), reached, at_sample


def percentage_completed(xy, reference, radius_m: float = DEFAULT_CHECKPOINT_RADIUS_M) -> float:
    """Percentage of the lap completed, 0..100: checkpoints reached (see
    ``checkpoint_progress``) / number of reference points * 100."""
    ref = _as_points(reference)
    if len(ref) == 0:
        return 0.0
    reached, _, _ = checkpoint_progress(xy, ref, radius_m)
    return 100.0 * reached / len(ref)


def lap_time(xy, t, reference, radius_m: float = DEFAULT_CHECKPOINT_RADIUS_M) -> float | None:
    """Lap time (simulated s), or None if the lap was not completed.

    The lap is completed when every checkpoint has been reached, the last one
    being the start point again (see ``checkpoint_progress``).  That happens
    when the car is still up to ``radius_m`` short of where it started (or
    crosses the start's gate), so
    taking that sample's time would shorten every lap by up to
    ``radius_m / speed``.  Instead the lap closes where the car passes closest
    to its own starting position ``xy[0]`` (where the clock started): we search
    the driven segments from the completing sample until the car is again
    farther than ``radius_m`` from the start, and interpolate the time linearly
    along the closest segment.  Lap time = that time - ``t[0]``.
    """
    pts = _as_points(xy)
    times = _as_vector(t)
    ref = _as_points(reference)
    if len(pts) < 2 or len(ref) == 0:
        return None
    reached, at_sample, through_gate = _best_walk(pts, ref, radius_m)
    if len(reached) < len(ref):
        return None
    first = at_sample[-1]
    origin = pts[0]
    # The closing pass: from the completing sample (and the segment into it)
    # until the car leaves the start's neighbourhood again (wider when the lap
    # closed through the start's gate, the car passing more than radius_m away).
    reach = radius_m
    if through_gate[-1]:
        reach = float(np.hypot(*(pts[first] - origin))) + radius_m
    far = np.flatnonzero(np.hypot(*(pts[first:] - origin).T) > reach)
    last = first + int(far[0]) if len(far) else len(pts) - 1
    lo = max(first - 1, 0)
    hi = max(last, lo + 1)
    a, b = pts[lo:hi], pts[lo + 1 : hi + 1]
    d = _segment_distances(np.broadcast_to(origin, a.shape), a, b)
    j = int(np.argmin(d))
    ab = b[j] - a[j]
    length_sq = float(ab @ ab)
    s = 0.0 if length_sq == 0.0 else min(max(float((origin - a[j]) @ ab) / length_sq, 0.0), 1.0)
    t_end = times[lo + j] + s * (times[lo + j + 1] - times[lo + j])
    return float(t_end - times[0])


# --------------------------------------------------------------------------- position deviation


def point_to_polyline_distance(points, polyline, k: int = 16) -> np.ndarray:
    """Distance (m) from each of ``points`` (N, 2) to the polyline through
    ``polyline`` (M, 2): the exact point-to-SEGMENT distance, not the distance
    to the nearest vertex (which overestimates it by up to half a segment when
    the path is sampled coarsely).

    Fast and exact: a ``cKDTree`` over the vertices gives each point its ``k``
    nearest vertices and we measure the segments adjacent to them.  The result
    ``d`` is certified when the k-th nearest vertex is farther than
    ``d + h`` (``h`` = half the longest short segment): any segment closer than
    ``d`` has an endpoint within ``d + h``, and all those were checked.  Points
    not certified that way are retried with 4x more neighbours (up to 1024),
    then resolved with a radius query.  Unusually long
    segments (gaps in odometry, resets) are measured by brute force so they do
    not inflate ``h``.  An empty polyline raises ``ValueError``.
    """

    pts = _as_points(points)
    line = _as_points(polyline)
    if len(line) == 0:
        raise ValueError("point_to_polyline_distance: empty polyline")
    if len(pts) == 0:
        return np.zeros(0)
    if len(line) == 1:
        return np.hypot(*(pts - line[0]).T)

    seg_a, seg_b = line[:-1], line[1:]
    seg_len = np.hypot(*(seg_b - seg_a).T)
    n_seg = len(seg_len)

    # Long segments: brute force over them, in chunks to bound memory.
    long_thresh = max(4.0 * float(np.median(seg_len)), 1e-9)
    long_idx = np.flatnonzero(seg_len > long_thresh)
    best = np.full(len(pts), np.inf)
    for start in range(0, len(long_idx), 64):
        chunk = long_idx[start : start + 64]
        p = np.repeat(pts, len(chunk), axis=0)
        a = np.tile(seg_a[chunk], (len(pts), 1))
        b = np.tile(seg_b[chunk], (len(pts), 1))
        best = np.minimum(best, _segment_distances(p, a, b).reshape(len(pts), len(chunk)).min(axis=1))
    short = np.ones(n_seg, dtype=bool)
    short[long_idx] = False
    half_len = 0.5 * float(seg_len[short].max()) if short.any() else 0.0

    def adjacent_segments(vertex_idx: np.ndarray) -> np.ndarray:
        # Vertex v touches segments v-1 and v; clip at the ends (the duplicate is harmless).
        return np.stack([np.clip(vertex_idx - 1, 0, n_seg - 1), np.clip(vertex_idx, 0, n_seg - 1)], axis=-1)

    tree = cKDTree(line)
    todo = np.arange(len(pts))
    while len(todo):
        kk = min(k, len(line))
        nn_dist, nn_idx = tree.query(pts[todo], k=kk)
        nn_dist = nn_dist.reshape(len(todo), kk)
        segs = adjacent_segments(nn_idx.reshape(len(todo), kk)).reshape(len(todo), -1)
        p = np.repeat(pts[todo], segs.shape[1], axis=0)
        d = _segment_distances(p, seg_a[segs.ravel()], seg_b[segs.ravel()]).reshape(segs.shape).min(axis=1)
        best[todo] = np.minimum(best[todo], d)
        if kk == len(line):
            todo = todo[:0]  # every vertex was checked: exact
            break
        # Not certified yet: some vertex within best + h may have been missed.
        todo = todo[nn_dist[:, -1] < best[todo] + half_len]
        k *= 4
        if k > 1024:
            break
    # Rare leftovers (e.g. many coincident samples where the car stood still).
    for i in todo:
        verts = np.asarray(tree.query_ball_point(pts[i], best[i] + half_len), dtype=int)
        if len(verts) == 0:
            continue
        s = np.unique(adjacent_segments(verts).ravel())
        p = np.broadcast_to(pts[i], (len(s), 2))
        best[i] = min(best[i], float(_segment_distances(p, seg_a[s], seg_b[s]).min()))
    return best


def position_deviation(reference, xy) -> np.ndarray:
    """Position deviation (m) of each reference point: its distance to the
    car's path, the polyline through the odometry samples ``xy``, measured
    point-to-segment (see ``point_to_polyline_distance``).

    BehaviorMetrics measures to the nearest recorded sample instead, which
    makes the figure depend on the odometry rate.  ``compute_metrics``
    summarises it over the reached checkpoints only.
    """
    return point_to_polyline_distance(reference, xy)


# --------------------------------------------------------------------------- timing


def mean_inference_time_ms(inference_s) -> float | None:
    """Mean forward-pass time (ms), dropping the first and last ``INFERENCE_TRIM``
    (10) samples, which carry warm-up (lazy init, autotuning) and shutdown
    outliers; runs with fewer than ``2 * INFERENCE_TRIM + 1`` samples use them
    all.  None when there are none."""
    x = _as_vector(inference_s)
    if len(x) == 0:
        return None
    if len(x) > 2 * INFERENCE_TRIM:
        x = x[INFERENCE_TRIM:-INFERENCE_TRIM]
    return _finite_or_none(x.mean() * 1000.0)


# --------------------------------------------------------------------------- all metrics


def compute_metrics(record: RunRecord, radius_m: float = DEFAULT_CHECKPOINT_RADIUS_M) -> dict:
    """All metrics of one run, as a JSON-ready dict of plain Python values.

    Keys ``METRIC_KEYS``, in that order, then extras:

    - ``completed_pct``: ``percentage_completed`` (checkpoints reached / total, %).
    - ``completed_distance_m``, ``average_speed_mps``: see those functions
      (exact simulated time, not BehaviorMetrics' truncated clock).
    - ``lap_time_s``: ``lap_time``, None if the lap was not completed.
    - Position deviation, over the reference points the car reached (the
      checkpoints counted by ``checkpoint_progress``; all of them after a full
      lap), with ``d`` = ``position_deviation`` at those points:
      ``position_deviation_mae_m`` = mean(d) (m); ``position_deviation_total_m``
      = sum(d) (m); ``position_deviation_score`` = mean(1000 ** d), the unitless
      score BehaviorMetrics reports (its GUI labels it metres).  All three are
      None when no point was reached — never NaN (BehaviorMetrics issue #537).
      On an unfinished run the checkpoints reached "ahead" of the car's last
      position (up to ``radius_m``) count, at their distance to that position,
      so a short run's MAE is biased upwards; compare MAE between full laps.
    - ``off_track_events``: as recorded.
    - ``brain_iteration_frequency_hz`` = 1 / mean(iteration wall time), None if
      no iteration was recorded.
    - ``mean_inference_time_ms``: ``mean_inference_time_ms`` (trimmed mean).
    - ``frame_rate_hz`` = camera frames / wall-clock duration of the run.
    - ``sim_time_s`` = ``t[-1] - t[0]``; ``wall_time_s``: as recorded.

    Extras: ``end_reason``; ``average_speed_bm_mps`` (BehaviorMetrics'
    whole-second clock, None when under a second); ``distance_pct_of_lap``
    (driven distance / reference lap length * 100; exceeds 100 on a weaving or multi-lap run);
    ``checkpoints_reached``, ``checkpoints_total``; ``condition``: the simulator's conditions
    (``sim.conditions`` label, "none" = clear; None when the record does not say).

    Any undefined or non-finite value is None.
    """
    xy = _as_points(record.xy)
    t = _as_vector(record.t)
    ref = _as_points(record.reference)

    distance = completed_distance(xy)
    reached, reached_idx, _ = checkpoint_progress(xy, ref, radius_m)
    completed = 100.0 * reached / len(ref) if len(ref) else 0.0

    mae = total = score = None
    if reached:
        d = position_deviation(ref[np.asarray(reached_idx)], xy)
        mae, total = float(d.mean()), float(d.sum())
        # 1000**d overflows to inf beyond ~100 m; _finite_or_none turns that into None.
        with np.errstate(over="ignore"):
            score = float(np.power(1000.0, d).mean())

    iteration = _as_vector(record.iteration_wall_s)
    frequency = None
    if len(iteration) and iteration.mean() > 0:
        frequency = 1.0 / float(iteration.mean())
    wall = _finite_or_none(record.wall_time_s)
    frame_rate = record.frame_count / wall if wall else None
    sim_time = float(t[-1] - t[0]) if len(t) else 0.0

    bm_seconds = math.floor(t[-1]) - math.floor(t[0]) if len(t) >= 2 else 0
    speed_bm = average_speed(xy, t, truncate_clock=True) if bm_seconds > 0 else None
    lap_length = completed_distance(np.vstack([ref, ref[:1]])) if len(ref) else 0.0

    metrics = {
        "circuit": str(record.circuit),
        "direction": str(record.direction),
        "brain": str(record.brain),
        "completed_pct": completed,
        "completed_distance_m": distance,
        "average_speed_mps": average_speed(xy, t),
        "lap_time_s": lap_time(xy, t, ref, radius_m),
        "position_deviation_mae_m": mae,
        "position_deviation_total_m": total,
        "position_deviation_score": score,
        "off_track_events": int(record.off_track_events),
        "brain_iteration_frequency_hz": frequency,
        "mean_inference_time_ms": mean_inference_time_ms(record.inference_s),
        "frame_rate_hz": frame_rate,
        "sim_time_s": sim_time,
        "wall_time_s": wall,
        # extras
        "end_reason": str(record.end_reason),
        "average_speed_bm_mps": speed_bm,
        "distance_pct_of_lap": 100.0 * distance / lap_length if lap_length > 0 else None,
        "checkpoints_reached": int(reached),
        "checkpoints_total": int(len(ref)),
        "condition": record.condition,
    }
    return {k: (_finite_or_none(v) if isinstance(v, (float, np.floating)) else v) for k, v in metrics.items()}


# --------------------------------------------------------------------------- writers


def write_metrics_json(metrics: dict, path) -> None:
    """Write one run's metrics as indented, strict JSON (a non-finite value is written as null)."""
    write_json_atomic(metrics, path)


#: Table columns: (metric key, human header, decimals; None = not a float).
TABLE_COLUMNS = (
    ("circuit", "Circuit", None),
    ("direction", "Direction", None),
    ("brain", "Brain", None),
    ("completed_pct", "Completed (%)", 1),
    ("completed_distance_m", "Distance (m)", 1),
    ("average_speed_mps", "Avg speed (m/s)", 2),
    ("lap_time_s", "Lap time (s)", 2),
    ("position_deviation_mae_m", "Deviation MAE (m)", 3),
    ("position_deviation_total_m", "Deviation total (m)", 1),
    ("position_deviation_score", "BM deviation score", 2),
    ("off_track_events", "Off-track events", None),
    ("brain_iteration_frequency_hz", "Brain freq (Hz)", 1),
    ("mean_inference_time_ms", "Inference (ms)", 2),
    ("frame_rate_hz", "Frame rate (Hz)", 1),
    ("sim_time_s", "Sim time (s)", 1),
    ("wall_time_s", "Wall time (s)", 1),
)


def _format_cell(value, decimals, missing: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if (
        decimals is not None
        and isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
    ):
        return f"{float(value):.{decimals}f}"
    return str(value)


def metrics_table(rows: list[dict], fmt: str = "markdown", columns=TABLE_COLUMNS) -> str:
    """Human-readable table of several runs' metrics (one row per run).

    ``columns`` are (key, header, decimals) triples, by default the ``METRIC_KEYS`` with readable
    headers and units, numbers rounded to a sensible number of decimals.  ``fmt="markdown"`` shows
    a missing value (None) as "-"; ``fmt="csv"`` leaves the cell empty.
    """
    if fmt not in ("markdown", "csv"):
        raise ValueError(f"metrics_table: fmt must be 'markdown' or 'csv', not {fmt!r}")
    headers = [header for _, header, _ in columns]
    missing = "-" if fmt == "markdown" else ""
    body = [[_format_cell(row.get(key), dec, missing) for key, _, dec in columns] for row in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(body)
        return buf.getvalue()

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    # Text columns left-aligned, numbers right-aligned.
    align = [":---" if dec is None and key not in ("off_track_events",) else "---:" for key, _, dec in columns]
    return "\n".join([line(headers), line(align)] + [line(r) for r in body]) + "\n"


def write_table(rows: list[dict], path_without_suffix) -> tuple[str, str]:
    """Write ``metrics_table`` as ``<path>.md`` and ``<path>.csv``; return both paths."""
    base = os.fspath(path_without_suffix)
    paths = (base + ".md", base + ".csv")
    for path, fmt in zip(paths, ("markdown", "csv")):
        write_text_atomic(metrics_table(rows, fmt), path)
    return paths
