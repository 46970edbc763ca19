"""The camera's yaw on the car (a mounting offset), calibrated or estimated while driving.

A camera turned by psi on a car that follows the road sees the frame a straight camera sees from a car
turned by psi: one frame cannot tell the two apart, so a single-frame network steers the car off the
centre line (shipped PilotNet on montreal, 2.5 deg: deviation 0.285 m against 0.090 m clear). Over time
they differ: a car that follows the road heads along it on average, so on straights the vanishing point of
the road's edges lies where the car's forward axis projects, and its column gives psi
(`CameraYawEstimator`). The brain then turns each frame back by psi (`view_correction`, exact for a
rotation of the camera about its centre) before the network sees it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import cv2
import numpy as np

from pilotnet_brain.sim.camera import CameraModel

#: Estimated yaws smaller than this leave the frame as it is: the estimate's own error is ~0.15 deg, and
#: a frame left untouched is bit for bit what the network was trained on.
MIN_CORRECTION_RAD = math.radians(0.5)

# Edge-line search (on the road below the horizon, at half resolution).
_MARGIN_BELOW_HORIZON_PX = 6
_MIN_SEGMENT_PX = 50  # at half resolution: a road edge on a straight, not a piece of a bend
_MIN_SLOPE_DEG, _MAX_SLOPE_DEG = 12.0, 85.0  # flatter: shadows across the road, the haze line; steeper: none
_MIN_CROSSING_SIN = 0.2  # pairs of nearly parallel segments (both edges of one line) give no usable crossing


def vanishing_point(frame_rgb: np.ndarray, horizon_row: float) -> tuple[float, float, float] | None:
    """(column, row, spread) of the point where the straight road edges below `horizon_row` meet, or None.

    Segments come from Canny + probabilistic Hough at half resolution; every pair of non-parallel segments
    crosses somewhere and the medians of the crossings are the vanishing point; spread (px) is the median
    distance of the crossings' columns from it: small on a straight, large when the edges bend."""
    top = max(int(horizon_row) + _MARGIN_BELOW_HORIZON_PX, 0)
    height, width = frame_rgb.shape[:2]
    if top >= height - 2 * _MIN_SEGMENT_PX:
        return None
    grey = cv2.cvtColor(frame_rgb[top:], cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (width // 2, grey.shape[0] // 2), interpolation=cv2.INTER_LINEAR)  # = 2x2 mean here
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 30, 90)
    found = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=_MIN_SEGMENT_PX, maxLineGap=4)
    if found is None:
        return None
    seg = found.reshape(-1, 4).astype(np.float64) * 2 + 0.5  # half-resolution pixel centres -> full
    seg[:, [1, 3]] += top
    dx, dy = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    slope = np.degrees(np.arctan2(np.abs(dy), np.abs(dx)))
    seg = seg[(slope > _MIN_SLOPE_DEG) & (slope < _MAX_SLOPE_DEG)]
    if len(seg) < 2:
        return None
    # Each segment as a unit-normal line a u + b v = c; crossings of every pair.
    a, b = seg[:, 3] - seg[:, 1], seg[:, 0] - seg[:, 2]
    norm = np.hypot(a, b)
    a, b = a / norm, b / norm
    c = a * seg[:, 0] + b * seg[:, 1]
    i, j = np.triu_indices(len(seg), k=1)
    det = a[i] * b[j] - a[j] * b[i]
    keep = np.abs(det) >= _MIN_CROSSING_SIN
    if np.count_nonzero(keep) < 2:
        return None
    i, j, det = i[keep], j[keep], det[keep]
    u = (c[i] * b[j] - c[j] * b[i]) / det
    v = (a[i] * c[j] - a[j] * c[i]) / det
    column, row = float(np.median(u)), float(np.median(v))
    return column, row, float(np.median(np.abs(u - column)))


def yaw_of_column(column: float, camera: CameraModel) -> float:
    """Camera yaw (rad, turned left positive) at which the car's forward axis projects onto `column`.

    The far point (X, 0) of `CameraModel.car_ground_to_image` goes to u = cx + f tan(yaw) / cos(pitch)."""
    return math.atan((column - camera.width / 2) * math.cos(camera.pitch_rad) / camera.focal_px)


def view_correction(camera: CameraModel, yaw_rad: float) -> np.ndarray:
    """Homography from a pixel of `camera` to the same ray's pixel in that camera turned left by yaw_rad.

    Warping a frame of the turned camera through it gives the unturned camera's frame (a rotation about the
    camera's centre maps every ray, ground or sky, exactly; only the border the turn brought in is new)."""
    turned = replace(camera, yaw_rad=camera.yaw_rad + yaw_rad)
    return turned.car_ground_to_image() @ np.linalg.inv(camera.car_ground_to_image())


class CameraYawEstimator:
    """Running estimate of the camera's yaw on the car from the road's vanishing point on straights.

    `observe` looks at every `every`-th frame while the car is on a straight: over the last `straight_frames`
    frames (0.5 s at 30 frames/s, so short straights count) |w| <= max_turn_rate and |mean w| <=
    max_mean_turn_rate (at 10 m/s, a radius of 500 m or more). A long sweeper keeps w small but steady (0.07 rad/s
    on a 150 m radius) and its bent edges meet off the car's axis: gated on |w| alone, such samples turned frames
    by a wrong yaw and tripled the deviation on a circuit of sweepers (gen:900003 0.137 m against 0.044 m).
    Frames whose edges meet within max_spread_px give a sample. The estimate is the median of the last `window`
    samples' columns, once there are `min_samples` of them; before that, `initial_yaw_rad`."""

    def __init__(
        self,
        camera: CameraModel | None = None,
        initial_yaw_rad: float = 0.0,
        every: int = 5,
        window: int = 101,
        min_samples: int = 15,
        max_turn_rate: float = 0.1,
        max_mean_turn_rate: float = 0.02,
        straight_frames: int = 15,
        max_spread_px: float = 6.0,
    ):
        self.camera = camera or CameraModel()
        self.initial_yaw_rad = initial_yaw_rad
        self.every, self.min_samples = every, min_samples
        self.max_turn_rate, self.max_spread_px = max_turn_rate, max_spread_px
        self.max_mean_turn_rate, self.straight_frames = max_mean_turn_rate, straight_frames
        self._columns: deque = deque(maxlen=window)
        self._turn_rates: deque = deque(maxlen=straight_frames)
        self.reset()

    def reset(self) -> None:
        """A new episode: no samples yet."""
        self._columns.clear()
        self._turn_rates.clear()
        self._frames = 0
        self.yaw_rad = self.initial_yaw_rad

    @property
    def samples(self) -> int:
        return len(self._columns)

    def _on_a_straight(self) -> bool:
        rates = self._turn_rates
        return (
            len(rates) == rates.maxlen
            and max(map(abs, rates)) <= self.max_turn_rate
            and abs(sum(rates)) <= self.max_mean_turn_rate * len(rates)
        )

    def observe(self, frame_rgb: np.ndarray, turn_rate: float) -> None:
        """Take a sample from the frame when it is due and usable; updates `yaw_rad`."""
        self._frames += 1
        self._turn_rates.append(turn_rate)
        if self._frames % self.every or not self._on_a_straight():
            return
        # The camera's own pitch puts the horizon here; the search starts below it.
        found = vanishing_point(frame_rgb, self.camera.horizon_row)
        if found is None or found[2] > self.max_spread_px:
            return
        self._columns.append(found[0])
        if len(self._columns) >= self.min_samples:
            self.yaw_rad = yaw_of_column(float(np.median(self._columns)), self.camera)
