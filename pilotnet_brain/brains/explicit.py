"""The explicit ("expert") brain, after BehaviorMetrics' explicit brain: it sees only the camera image.

1. Segment the red center line on a few image rows (each row is a fixed distance ahead on the ground).
2. Back-project the line's pixels to the ground with the calibrated camera and fit Y(X) = a + bX + cX^2:
   a is the line's lateral offset at the car, atan(b) its relative heading, 2c its curvature ahead.
3. Steer with a PID on the lateral offset plus curvature feed-forward: w = v*2c + kp*a + ki*int(a) +
   kd*atan(b) (the offset changes at v*heading, so the heading term is the derivative term). Gains are
   scheduled with speed so the closed loop has the same natural frequency at any speed.
4. Choose the speed from the sharpest curvature visible ahead (lateral-acceleration limit).

Blind: when it cannot see the line it brakes to a stop along the road's last seen curvature and says why
(BrainOutput.blind). A scan row shows the line when it has at least one and at most `max_red_runs` red
runs (more is clutter: noise, not a line); the brain is blind when fewer than `min_line_rows` rows show
it (a black or noisy frame, grass only, the line occluded) or when their points zig-zag as no line does
(`max_line_turns`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from pilotnet_brain.control import BrainOutput, Command
from pilotnet_brain.sim.camera import CameraModel

SCAN_DISTANCES_M = (2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.5, 10.0, 12.0, 14.0, 16.5, 19.0, 22.0)


@dataclass(frozen=True)
class ExplicitBrainParams:
    max_speed_mps: float = 11.0
    min_speed_mps: float = 3.0
    lateral_accel_mps2: float = 4.0  # speed limit in curves: v = sqrt(a / curvature)
    natural_freq_rps: float = 2.5  # lateral loop: s^2 + 2*zeta*wn*s + wn^2
    damping: float = 0.8
    ki: float = 0.05  # per (m s) of lateral offset; removes a steady bias
    red_contrast: int = 50  # red channel must beat green and blue by this much
    max_red_runs: int = 3  # more red runs on a scan row: clutter (the line + two other parts of the circuit)
    min_line_rows: int = 4  # fewer scan rows on the line: blind (the quadratic fit needs 3, plus one to spare)
    # A line crosses the scan rows in one sweep: from near to far its column turns back once past a curve's
    # apex, twice in an S-bend; 3 times at most on every circuit here (gentle bends far ahead, Catalunya).
    # Marks that zig-zag turn at nearly every row (11 times on 13 rows). Turns back within the rendering's
    # jitter do not count.
    max_line_turns: int = 5
    column_jitter_px: float = 2.0
    blind_decel_mps2: float = 4.0  # braking to a stop when blind


def line_turns(columns: np.ndarray, jitter_px: float) -> int:
    """How often the column of the line points, near to far, turns back by more than jitter_px (hysteresis)."""
    turns, direction, extreme = 0, 0.0, float(columns[0])
    for u in columns[1:]:
        if direction and (u - extreme) * direction > 0:
            extreme = float(u)  # further the same way
        elif abs(u - extreme) > jitter_px:
            turns += direction != 0
            direction, extreme = math.copysign(1.0, u - extreme), float(u)
    return turns


class ExplicitBrain:
    name = "explicit"

    def __init__(self, camera: CameraModel | None = None, params: ExplicitBrainParams | None = None):
        self.camera = camera or CameraModel()
        self.params = params or ExplicitBrainParams()
        rows, dists = [], []
        for d in SCAN_DISTANCES_M:
            r = int(round(self.camera.row_of_ground_distance(d)))
            if 0 <= r < self.camera.height and r not in rows:
                rows.append(r)
                dists.append(d)
        self.rows = np.array(rows)
        self._cols = np.arange(self.camera.width, dtype=np.float64)
        self._h_inv = np.linalg.inv(self.camera.car_ground_to_image())
        self.reset()

    def reset(self) -> None:
        self._integral = 0.0
        self._last_stamp: float | None = None
        self._last_v = 0.0  # until it has driven, the car is taken to stand still
        self._road_curvature = 0.0  # of the line at the car, last seen (1/m, left positive)

    # --- perception --------------------------------------------------------------------------------
    def line_points(self, image_rgb: np.ndarray) -> np.ndarray:
        """Ground points (X forward, Y left; m, car frame) of the red line on the scan rows, near to far."""
        return self._to_ground(self.line_pixels(image_rgb))

    def line_pixels(self, image_rgb: np.ndarray) -> np.ndarray:
        """Pixels (u, v) of the red line on the scan rows, near to far.

        A cluttered row (more than max_red_runs red runs: noise, not a line) gives no pixel.
        """
        band = image_rgb[self.rows].astype(np.int16)
        redness = band[..., 0] - np.maximum(band[..., 1], band[..., 2])
        mask = redness > self.params.red_contrast
        points = []
        prev_u = None
        for i in range(len(self.rows)):
            cols = np.flatnonzero(mask[i])
            if cols.size == 0:
                continue
            # Split into runs; keep the run nearest the previous row's (another part of the track may show).
            breaks = np.flatnonzero(np.diff(cols) > 3)
            runs = np.split(cols, breaks + 1)
            if len(runs) > self.params.max_red_runs:
                continue
            centres = [r.mean() for r in runs]
            ref = self.camera.width / 2 if prev_u is None else prev_u
            u = min(centres, key=lambda c: abs(c - ref))
            if prev_u is not None and abs(u - prev_u) > self.camera.width * 0.35:
                break  # the line jumped: what follows belongs to another part of the circuit
            prev_u = u
            points.append((u, self.rows[i]))
        return np.asarray(points, np.float64).reshape(-1, 2)

    def _to_ground(self, pixels: np.ndarray) -> np.ndarray:
        if not len(pixels):
            return np.empty((0, 2))
        uv = np.column_stack([pixels, np.ones(len(pixels))])
        g = uv @ self._h_inv.T
        return g[:, :2] / g[:, 2:3]

    # --- control -----------------------------------------------------------------------------------
    def step(self, image_rgb: np.ndarray, stamp_s: float) -> BrainOutput:
        t0 = time.perf_counter()
        p = self.params
        dt = 0.0 if self._last_stamp is None else max(stamp_s - self._last_stamp, 0.0)
        self._last_stamp = stamp_s
        pixels = self.line_pixels(image_rgb)
        if len(pixels) < max(p.min_line_rows, 2):
            return self._brake(dt, f"the line shows on {len(pixels)} of {len(self.rows)} scan rows", t0)
        turns = line_turns(pixels[:, 0], p.column_jitter_px)
        if turns > p.max_line_turns:
            return self._brake(dt, f"the red marks are no line (they turn {turns} times across the scan rows)", t0)

        pts = self._to_ground(pixels)
        x, y = pts[:, 0], pts[:, 1]
        coeffs = np.polyfit(x, y, 2 if len(pts) >= 4 else 1)
        if len(coeffs) == 2:
            coeffs = np.concatenate([[0.0], coeffs])
        c2, b1, a0 = (float(k) for k in coeffs)
        far_x = float(x.max())
        far_y = float(y[np.argmax(x)])

        # Speed from the sharpest visible curvature; a line that leaves the view early means a tight turn.
        xs = np.linspace(float(x.min()), far_x, 8)
        slope = b1 + 2 * c2 * xs
        curvature = float(np.max(np.abs(2 * c2) / (1 + slope**2) ** 1.5))
        curvature = max(curvature, 2 * abs(far_y) / (far_x**2 + far_y**2))
        if far_x < 12.0:
            curvature = max(curvature, 1.0 / (2.5 * far_x))
        v = min(p.max_speed_mps, max(p.min_speed_mps, math.sqrt(p.lateral_accel_mps2 / max(curvature, 1e-6))))

        heading = math.atan(b1)
        if dt > 0:
            self._integral = min(max(self._integral + a0 * dt, -2.0), 2.0)
        wn = p.natural_freq_rps
        kp = wn * wn / max(v, p.min_speed_mps)
        kd = 2 * p.damping * wn
        w = v * 2 * c2 + kp * a0 + p.ki * self._integral + kd * heading
        self._last_v = v
        self._road_curvature = 2 * c2
        return BrainOutput(Command(v, w), time.perf_counter() - t0)

    def _brake(self, dt: float, reason: str, t0: float) -> BrainOutput:
        """Blind: slow down towards a stop following the road's last seen curvature (no correction: no measurement)."""
        v = max(0.0, self._last_v - self.params.blind_decel_mps2 * dt)
        self._last_v = v
        return BrainOutput(Command(v, v * self._road_curvature), time.perf_counter() - t0, blind=reason)
