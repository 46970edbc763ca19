"""Track files in the TUM racetrack database format: ``x_m,y_m,w_tr_right_m,w_tr_left_m``, one row per point.

:func:`read_tum_track` reads and validates a file (numbers, positive widths, enough distinct points, a
closed loop) and returns its points in file units (metres); :func:`circuits.load_csv` turns them into
a :class:`circuits.Circuit` and checks that the smoothed loop can be driven (no crossing, bends wider
than the road, neither too small nor too large).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pilotnet_brain.errors import CircuitError

__all__ = ["TumTrack", "read_tum_track"]

# Closure rule for CSV files (the loop is closed implicitly, from the last row
# back to the first): the closing gap may be a few ordinary steps long, but a
# gap both much longer than the typical step and longer than a road width's
# worth of metres means the file holds an open path, not a lap.
MAX_CLOSING_GAP_STEPS = 5.0
MAX_CLOSING_GAP_M = 20.0

MIN_CSV_POINTS = 10

# Consecutive points closer than this are one point (some files repeat rows).
DUPLICATE_TOLERANCE_M = 1e-6
# Distinct consecutive points closer than this are a mistake: the spline through them kinks.
MIN_POINT_SPACING_M = 0.01

# Coordinates beyond this are no track (float64 still resolves 0.1 m here; the map bound refuses far less).
MAX_ABS_COORDINATE_M = 1e15

# A track file is a few hundred kB (a 5 km lap every metre); larger is not a track.
MAX_TRACK_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TumTrack:
    """A validated track file: its distinct points (N, 2) in driving order and its median half width (m)."""

    points: np.ndarray
    half_width_m: float


def _read_track_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows (x, y, w_right, w_left) of a TUM-format track file, validated, and their line numbers."""
    if not path.exists():
        raise CircuitError(f"track file {path} does not exist")
    if not path.is_file():
        raise CircuitError(f"track file {path} is not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_TRACK_FILE_BYTES:
            raise CircuitError(
                f"track file {path} is {size / 1e6:.0f} MB, more than the {MAX_TRACK_FILE_BYTES / 1e6:.0f} MB "
                "a track file can be"
            )
        text = path.read_text(encoding="utf-8-sig")  # tolerates a byte-order mark
    except (OSError, UnicodeDecodeError) as error:
        raise CircuitError(f"track file {path} could not be read: {error}") from error

    rows, line_numbers = [], []
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
        if max(abs(values[0]), abs(values[1])) > MAX_ABS_COORDINATE_M:
            raise CircuitError(
                f"track file {path}, line {line_number}: coordinate beyond {MAX_ABS_COORDINATE_M:g} m in {stripped!r}"
            )
        if values[2] <= 0.0 or values[3] <= 0.0:
            raise CircuitError(
                f"track file {path}, line {line_number}: track widths must be positive, got {values[2]}, {values[3]}"
            )
        rows.append(values)
        line_numbers.append(line_number)
    if not rows:
        raise CircuitError(f"track file {path} holds no data rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(line_numbers)


def _drop_consecutive_duplicates(rows: np.ndarray, line_numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop rows repeating the previous point, the last one included if it repeats the first."""
    steps = np.linalg.norm(np.diff(rows[:, :2], axis=0), axis=1)
    keep = np.concatenate([[True], steps > DUPLICATE_TOLERANCE_M])
    rows, line_numbers = rows[keep], line_numbers[keep]
    while len(rows) > 1 and np.linalg.norm(rows[-1, :2] - rows[0, :2]) <= DUPLICATE_TOLERANCE_M:
        rows, line_numbers = rows[:-1], line_numbers[:-1]
    return rows, line_numbers


def _check_point_spacing(path: Path, points: np.ndarray, line_numbers: np.ndarray) -> None:
    """Refuse distinct consecutive points (the closing pair included) closer than MIN_POINT_SPACING_M."""
    steps = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    index = int(np.argmin(steps))
    if steps[index] < MIN_POINT_SPACING_M:
        following = (index + 1) % len(points)
        raise CircuitError(
            f"track file {path}, lines {line_numbers[index]} and {line_numbers[following]}: the points are only "
            f"{steps[index]:.3g} m apart, closer than {MIN_POINT_SPACING_M:g} m without being the same point "
            "(the smoothed line would kink there; remove one)"
        )


def read_tum_track(path) -> TumTrack:
    """Read a TUM-format CSV, checking that its rows form a closed loop of distinct points.

    The loop is closed implicitly, from the last row back to the first; the half width is the
    median of (w_right + w_left) / 2. Raises CircuitError naming the file and what is wrong.
    Whether the loop crosses itself is checked on the smoothed center line, the line that is
    driven (:func:`circuits.load_csv`).
    """
    path = Path(path)
    rows, line_numbers = _drop_consecutive_duplicates(*_read_track_csv(path))
    if len(rows) < MIN_CSV_POINTS:
        raise CircuitError(f"track file {path}: {len(rows)} distinct points, at least {MIN_CSV_POINTS} are needed")

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
    _check_point_spacing(path, points, line_numbers)
    return TumTrack(points=points, half_width_m=float(np.median(rows[:, 2] + rows[:, 3]) / 2.0))
