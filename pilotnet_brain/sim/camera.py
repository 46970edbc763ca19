"""Forward camera of the F1 car and its exact ground-plane renderer.

Geometry (pinhole, no distortion): the camera sits `height_m` above the ground, `forward_m` ahead of
the car's reference point, looking forward (turned left by `yaw_rad`, 0 for the F1 car) and pitched down
by `pitch_rad`. Image convention: u to
the right, v down, 640x480 RGB like Gazebo's F1 camera. Car frame: X forward, Y left, Z up.

Every ground point maps to the image by one homography, so a frame is a single `cv2.warpPerspective`
of the circuit's signed-distance map (see track_map.py) followed by a colour look-up: asphalt, red
center line, white edge lines, grass; the sky is a constant gradient above the horizon. An `Appearance`
changes the colours, line widths and light (folded into the palette: no cost per frame) and adds, per
frame, shadow bands, motion blur and sensor noise (sim/conditions.py sets them by name and level).
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
    yaw_rad: float = 0.0  # camera turned left of the car's heading (a mounting offset)

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
        sy, cy = math.sin(self.yaw_rad), math.cos(self.yaw_rad)
        h, f0 = self.height_m, self.forward_m
        # Ground point in the camera's turned frame: X' = cy (X - f0) + sy Y (forward), Y' = -sy (X - f0) + cy Y
        # (left). Camera axes: x right (= -Y'), y down, z forward along the pitched optical axis. With yaw 0
        # this is exactly the unturned matrix.
        m = np.array(
            [
                [sy, -cy, -sy * f0],
                [-s * cy, -s * sy, h * c + f0 * s * cy],
                [c * cy, c * sy, h * s - f0 * c * cy],
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


@dataclass(frozen=True)
class Appearance:
    """What the camera sees besides the geometry; the defaults render the plain world.

    Colours, widths and light go into the palette and sky once; shadows, motion blur and noise cost a
    little per frame, and only when set."""

    brightness: float = 1.0  # multiplies every colour
    noise_std: float = 0.0  # std of additive Gaussian pixel noise (0..255 scale, at most 40)
    light_rgb_gain: tuple = (1.0, 1.0, 1.0)  # colour of the light (conditions.light_rgb_gain)
    asphalt_rgb: tuple = ASPHALT
    grass_rgb: tuple = GRASS
    red_line_rgb: tuple = RED_LINE
    white_line_rgb: tuple = WHITE_LINE
    red_line_width_m: float = RED_LINE_WIDTH_M
    white_line_width_m: float = WHITE_LINE_WIDTH_M
    shadow_darkness: float = 0.0  # fraction of the light taken away in the shadow bands (0 = no shadows)
    shadow_period_m: float = 7.0  # bands repeat this far apart across the ground, fixed in the world
    shadow_duty: float = 0.4  # fraction of each period in shadow
    exposure_s: float = 0.0  # motion blur: the image moves for this long while the shutter is open


#: Most the noise std may be (the noise of a uint8 frame; beyond this it is mostly saturation).
MAX_NOISE_STD = 40.0
#: Motion-blur kernels are rounded to these lengths (px), so a frame takes a few blur calls, not one per row.
_BLUR_LENGTHS = np.unique(np.rint(1.4 ** np.arange(0, 13)).astype(int))


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
        look = self.appearance
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
        # Per-frame effects, each set up only when used (the plain world renders as before).
        self._shadow_direction = None
        if look.shadow_darkness > 0:
            layout = np.random.default_rng([seed, 1])
            angle = layout.uniform(0, math.pi)
            self._shadow_direction = (math.cos(angle), math.sin(angle))
            self._shadow_phase_m = layout.uniform(0, look.shadow_period_m)
            self._shadow_mask = np.zeros((self._ground_size[1], self._ground_size[0]), np.uint8)
            self._shadowed = np.empty((self._ground_size[1], self._ground_size[0], 3), np.uint8)
        self._row_flow = None
        if look.exposure_s > 0:
            # Forward motion moves a ground row r px below the horizon by r^2 v / (f h) px/s (pinhole, small pitch).
            r = np.arange(self._ground_row, cam.height) + 0.5 - cam.horizon_row
            self._row_flow = r**2 / (cam.focal_px * cam.height_m)
        self._noise = None
        if look.noise_std > 0:
            if look.noise_std > MAX_NOISE_STD:
                raise ValueError(f"noise_std {look.noise_std} is above {MAX_NOISE_STD:g}")
            # Drawn once: each frame adds a window at a random offset of two frames' worth of noise, kept as
            # its positive and negative parts (two saturating uint8 operations: OpenCV's fastest path).
            self._frame_values = cam.height * cam.width * 3
            pool = np.rint(np.random.default_rng([seed, 2]).normal(0.0, look.noise_std, 2 * self._frame_values))
            self._noise = (np.clip(pool, 0, 255).astype(np.uint8), np.clip(-pool, 0, 255).astype(np.uint8))

    def _make_palette(self, half_width_m: float) -> np.ndarray:
        look = self.appearance
        b = self.BIN_M
        d = np.arange(256) * b  # convertScaleAbs rounds, so entry i stands for |d| in [(i - 0.5) b, (i + 0.5) b)
        pal = np.empty((256, 3), np.float64)
        pal[:] = look.grass_rgb
        pal[d < half_width_m + look.white_line_width_m / 2] = look.white_line_rgb
        pal[d < half_width_m - look.white_line_width_m / 2] = look.asphalt_rgb
        pal[d < look.red_line_width_m / 2] = look.red_line_rgb
        pal = np.clip(pal * look.brightness * np.asarray(look.light_rgb_gain), 0, 255)
        return np.ascontiguousarray(pal.astype(np.uint8).reshape(256, 1, 3))

    def _make_sky(self) -> np.ndarray:
        cam = self.camera
        look = self.appearance
        rows = self._ground_row
        t = np.linspace(0, 1, max(rows, 1))[:, None]
        grad = (1 - t) * np.array(SKY_TOP) + t * np.array(SKY_HORIZON)
        grad = np.clip(grad * look.brightness * np.asarray(look.light_rgb_gain), 0, 255).astype(np.uint8)
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

    def render(
        self,
        x: float,
        y: float,
        yaw: float,
        out: np.ndarray | None = None,
        speed_mps: float = 0.0,
        yaw_rate_rps: float = 0.0,
    ) -> np.ndarray:
        """RGB uint8 (480, 640, 3) frame for the car at world pose (x, y, yaw); speed and yaw rate only
        matter for motion blur."""
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
        ground = out[self._ground_row :]
        ground[:] = cv2.applyColorMap(idx, self._palette)
        if self._shadow_direction is not None:
            self._shade(ground, x, y, yaw)
        if self._row_flow is not None:
            self._motion_blur(ground, speed_mps, yaw_rate_rps)
        if self._noise is not None:
            start = int(self._rng.integers(self._frame_values))
            window = slice(start, start + self._frame_values)
            up, down = (part[window].reshape(out.shape) for part in self._noise)
            cv2.add(out, up, dst=out)  # saturating; a value has only one of the parts: clip(out + noise)
            cv2.subtract(out, down, dst=out)
        return out

    def shadow_polygons(self, x: float, y: float, yaw: float) -> list[np.ndarray]:
        """The shadow bands seen from pose (x, y, yaw): convex polygons in ground-region pixels (u, v - ground_row).

        A band is where the world coordinate along the shadow direction lies in [a, a + duty * period): two
        half-planes in the world, so two half-planes in the image (below the horizon the homography keeps
        the sign of its last row), clipped to the ground region."""
        cam, look = self.camera, self.appearance
        pixel_to_world = np.linalg.inv(cam.car_ground_to_image() @ world_to_car(x, y, yaw))
        cx, cy = self._shadow_direction
        along = cx * pixel_to_world[0] + cy * pixel_to_world[1]  # world coordinate along the direction (x w)
        w = pixel_to_world[2]
        top, bottom, right = self._ground_row - 0.5, cam.height - 0.5, cam.width - 0.5
        corners = np.array([[-0.5, top, 1.0], [right, top, 1.0], [right, bottom, 1.0], [-0.5, bottom, 1.0]])
        if corners[2] @ w < 0:
            along, w = -along, -w
        coordinate = (corners @ along) / (corners @ w)
        period, phase = look.shadow_period_m, self._shadow_phase_m
        first = math.floor((coordinate.min() - phase) / period)
        last = math.floor((coordinate.max() - phase) / period)
        region = [(float(u), float(v)) for u, v, _ in corners]
        along, w = [float(v) for v in along], [float(v) for v in w]  # plain floats: the loop is Python
        polygons = []
        for k in range(first, last + 1):
            a = phase + k * period
            b = a + look.shadow_duty * period
            band = _clip(region, [along[i] - a * w[i] for i in range(3)])
            band = _clip(band, [b * w[i] - along[i] for i in range(3)])
            if len(band) >= 3:
                polygons.append(np.array(band) - (0.0, self._ground_row))
        return polygons

    def _shade(self, ground: np.ndarray, x: float, y: float, yaw: float) -> None:
        polygons = self.shadow_polygons(x, y, yaw)
        if not polygons:
            return
        mask = self._shadow_mask
        mask[:] = 0
        cv2.fillPoly(mask, [np.rint(p * 16).astype(np.int32) for p in polygons], 1, shift=4)
        cv2.convertScaleAbs(ground, dst=self._shadowed, alpha=1.0 - self.appearance.shadow_darkness)
        cv2.copyTo(self._shadowed, mask, ground)

    def _motion_blur(self, ground: np.ndarray, speed_mps: float, yaw_rate_rps: float) -> None:
        """Box blur over the exposure: horizontal by the yaw rate (f w e px), vertical by the forward speed
        (each row by its own flow, in strips of equal kernel length)."""
        exposure = self.appearance.exposure_s
        kx = max(1, int(round(self.camera.focal_px * abs(yaw_rate_rps) * exposure)))
        lengths = np.maximum(np.rint(self._row_flow * (abs(speed_mps) * exposure)), 1.0)
        ky = _BLUR_LENGTHS[np.clip(np.searchsorted(_BLUR_LENGTHS, lengths), 0, len(_BLUR_LENGTHS) - 1)]
        if kx == 1 and ky[-1] == 1:
            return
        source = ground.copy()
        bounds = [0, *(np.flatnonzero(np.diff(ky)) + 1), len(ky)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            k = int(ky[a])
            if k == 1 and kx == 1:
                continue
            lo, hi = max(a - k // 2 - 1, 0), min(b + k // 2 + 1, len(ky))  # the rows the strip's kernel reaches
            ground[a:b] = cv2.blur(source[lo:hi], (kx, k), borderType=cv2.BORDER_REPLICATE)[a - lo : b - lo]


def _clip(polygon: list, edge: list) -> list:
    """Sutherland-Hodgman: the part of a convex polygon [(u, v), ...] where edge . (u, v, 1) >= 0."""
    out = []
    n = len(polygon)
    for i in range(n):
        p, q = polygon[i], polygon[(i + 1) % n]
        fp = edge[0] * p[0] + edge[1] * p[1] + edge[2]
        fq = edge[0] * q[0] + edge[1] * q[1] + edge[2]
        if fp >= 0:
            out.append(p)
        if (fp >= 0) != (fq >= 0):
            s = fp / (fp - fq)
            out.append((p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])))
    return out
