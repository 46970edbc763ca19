"""Forward camera of the F1 car and its exact ground-plane renderer.

Geometry (pinhole, no distortion): the camera sits `height_m` above the ground, `forward_m` ahead of
the car's reference point, looking forward and pitched down by `pitch_rad`. Image convention: u to
the right, v down, 640x480 RGB like Gazebo's F1 camera. Car frame: X forward, Y left, Z up.

Every ground point maps to the image by one homography, so a frame is a single `cv2.warpPerspective`
of the circuit's signed-distance map (see track_map.py) followed by a colour look-up: asphalt, red
center line, white edge lines, grass; the sky is a constant gradient above the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pilotnet_brain.sim.track_map import TrackMap

# Colours (RGB) in the style of the Gazebo circuits.
ASPHALT = (92, 92, 96)
RED_LINE = (220, 30, 30)
WHITE_LINE = (240, 240, 240)
GRASS = (58, 118, 48)
SKY_TOP = (120, 170, 235)
SKY_HORIZON = (200, 222, 245)

RED_LINE_WIDTH_M = 0.25
WHITE_LINE_WIDTH_M = 0.2


@dataclass(frozen=True)
class CameraModel:
    width: int = 640
    height: int = 480
    horizontal_fov_rad: float = math.radians(60.0)
    height_m: float = 1.0
    forward_m: float = 0.5
    pitch_rad: float = math.radians(3.0)
    max_range_m: float = 80.0  # ground further than this is drawn as grass (distance haze)

    @property
    def focal_px(self) -> float:
        return (self.width / 2) / math.tan(self.horizontal_fov_rad / 2)

    @property
    def intrinsics(self) -> np.ndarray:
        f = self.focal_px
        return np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1.0]])

    @property
    def horizon_row(self) -> float:
        """Image row of the horizon (ground at infinity)."""
        return self.height / 2 - self.focal_px * math.tan(self.pitch_rad)

    @property
    def first_ground_row(self) -> int:
        """First image row whose ground point is closer than max_range_m (rows above it are sky or haze)."""
        return int(math.ceil(self.row_of_ground_distance(self.max_range_m)))

    def car_ground_to_image(self) -> np.ndarray:
        """Homography: car-frame ground point (X, Y, 1) -> homogeneous pixel (u, v, 1)."""
        s, c = math.sin(self.pitch_rad), math.cos(self.pitch_rad)
        h, f0 = self.height_m, self.forward_m
        # Camera axes: x right (= -Y), y down, z forward along the pitched optical axis.
        m = np.array(
            [
                [0.0, -1.0, 0.0],
                [-s, 0.0, h * c + f0 * s],
                [c, 0.0, h * s - f0 * c],
            ]
        )
        return self.intrinsics @ m

    def project(self, ground_xy_car: np.ndarray) -> np.ndarray:
        """Pixels (u, v) of car-frame ground points (N, 2)."""
        p = np.column_stack([ground_xy_car, np.ones(len(ground_xy_car))]) @ self.car_ground_to_image().T
        return p[:, :2] / p[:, 2:3]

    def pixel_to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Car-frame ground points (X, Y) seen at pixels (N, 2); rows must lie below the horizon."""
        h_inv = np.linalg.inv(self.car_ground_to_image())
        p = np.column_stack([uv, np.ones(len(uv))]) @ h_inv.T
        return p[:, :2] / p[:, 2:3]

    def row_of_ground_distance(self, forward_m: float) -> float:
        """Image row where the ground straight ahead at `forward_m` (car frame X) appears."""
        return float(self.project(np.array([[forward_m, 0.0]]))[0, 1])


def world_to_car(x: float, y: float, yaw: float) -> np.ndarray:
    """3x3 homogeneous transform from world ground coordinates to the car frame at pose (x, y, yaw)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, s, -c * x - s * y], [-s, c, s * x - c * y], [0, 0, 1.0]])


@dataclass
class Appearance:
    """Optional lighting / noise variation (data augmentation); defaults render the plain world."""

    brightness: float = 1.0  # multiplies every colour
    noise_std: float = 0.0  # std of additive Gaussian pixel noise (0..255 scale)


class Renderer:
    """Renders 640x480 RGB frames of a circuit seen from the car's camera."""

    BIN_M = 0.05  # colour palette resolution: 5 cm of distance per palette entry

    def __init__(
        self, track: TrackMap, camera: CameraModel | None = None, appearance: Appearance | None = None, seed: int = 0
    ):
        self.track = track
        self.camera = camera or CameraModel()
        self.appearance = appearance or Appearance()
        self._rng = np.random.default_rng(seed)
        cam = self.camera
        self._ground_row = max(0, min(cam.height, cam.first_ground_row))
        self._ground_size = (cam.width, cam.height - self._ground_row)
        self._palette = self._make_palette(track.half_width_m)
        self._sky = self._make_sky()
        # Crop of the distance map around the car holding every ground point the camera can see
        # (max_range_m ahead, out to the image corners), so the warp never reads past the crop.
        visible_radius_m = math.hypot(
            cam.max_range_m + cam.forward_m, cam.max_range_m * math.tan(cam.horizontal_fov_rad / 2)
        )
        self._window_cells = int(math.ceil(visible_radius_m / track.cell_m)) + 4
        self._pixel_offset = np.array([[1, 0, 0], [0, 1, self._ground_row], [0, 0, 1.0]])

    def _make_palette(self, half_width_m: float) -> np.ndarray:
        b = self.BIN_M
        d = np.arange(256) * b  # convertScaleAbs rounds, so entry i stands for |d| in [(i - 0.5) b, (i + 0.5) b)
        pal = np.empty((256, 3), np.float64)
        pal[:] = GRASS
        pal[d < half_width_m + WHITE_LINE_WIDTH_M / 2] = WHITE_LINE
        pal[d < half_width_m - WHITE_LINE_WIDTH_M / 2] = ASPHALT
        pal[d < RED_LINE_WIDTH_M / 2] = RED_LINE
        pal = np.clip(pal * self.appearance.brightness, 0, 255)
        return np.ascontiguousarray(pal.astype(np.uint8).reshape(256, 1, 3))

    def _make_sky(self) -> np.ndarray:
        cam = self.camera
        rows = self._ground_row
        t = np.linspace(0, 1, max(rows, 1))[:, None]
        grad = (1 - t) * np.array(SKY_TOP) + t * np.array(SKY_HORIZON)
        grad = np.clip(grad * self.appearance.brightness, 0, 255).astype(np.uint8)
        return np.repeat(grad[:, None, :], cam.width, axis=1)[:rows]

    def image_to_grid(self, x: float, y: float, yaw: float, col0: int = 0, row0: int = 0) -> np.ndarray:
        """Homography from a ground-region pixel (u, v - ground_row) to the grid (col - col0, row - row0)."""
        cam = self.camera
        grid_to_world = np.linalg.inv(self.track.world_to_grid)
        shift = np.array([[1, 0, -col0], [0, 1, -row0], [0, 0, 1.0]])
        grid_to_image = (
            np.linalg.inv(self._pixel_offset)
            @ cam.car_ground_to_image()
            @ world_to_car(x, y, yaw)
            @ grid_to_world
            @ np.linalg.inv(shift)
        )
        return np.linalg.inv(grid_to_image)

    def render(self, x: float, y: float, yaw: float, out: np.ndarray | None = None) -> np.ndarray:
        """RGB uint8 (480, 640, 3) frame for the car at world pose (x, y, yaw)."""
        cam = self.camera
        tm = self.track
        if out is None:
            out = np.empty((cam.height, cam.width, 3), np.uint8)
        # Camera position in grid cells; crop a window of the map around it (a view: no copy).
        cc = int((x - tm.origin_x) / tm.cell_m)
        cr = int((y - tm.origin_y) / tm.cell_m)
        w = self._window_cells
        rows, cols = tm.signed_distance_m.shape
        r0, c0 = max(cr - w, 0), max(cc - w, 0)
        window = tm.signed_distance_m[r0 : min(cr + w, rows), c0 : min(cc + w, cols)]
        if window.size == 0:  # the car is far outside the circuit's map: all grass
            dist = np.full((self._ground_size[1], self._ground_size[0]), 256 * self.BIN_M, np.float32)
        else:
            # Past the crop lies only the map's outer margin (grass): replicating its edge never
            # blends a negative and a positive distance into a phantom road, as a constant would.
            h = self.image_to_grid(x, y, yaw, c0, r0)
            dist = cv2.warpPerspective(
                window,
                h,
                self._ground_size,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
        # |d| in palette bins (saturates at 255 = grass), then colour look-up.
        idx = cv2.convertScaleAbs(dist, alpha=1.0 / self.BIN_M)
        out[: self._ground_row] = self._sky
        out[self._ground_row :] = cv2.applyColorMap(idx, self._palette)
        if self.appearance.noise_std > 0:
            noise = self._rng.normal(0, self.appearance.noise_std, out.shape)
            out[:] = np.clip(out + noise, 0, 255).astype(np.uint8)
        return out
