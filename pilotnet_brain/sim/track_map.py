"""Signed-distance map of a circuit: the one geometric model behind rendering and off-track checks.

The map stores, on a regular grid over the whole circuit, the signed distance (m, float32) from each
cell to the closed center line: positive on the left of the driving direction, negative on the right.
A signed distance is smooth across the center line, so bilinear interpolation of a coarse grid
(0.25 m cells; the error is about cell^2 / (8 R), ~1 mm in a 10 m radius hairpin) still places the
painted lines exactly at any camera distance; the renderer warps this grid straight into the image
with a homography (float32 has OpenCV's fastest warp path), and the car looks up its own lateral
offset in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from pilotnet_brain.errors import CircuitError

FAR_DISTANCE_M = 300.0  # the far field is clipped: it is all grass
MAX_CELLS = 30_000_000  # ~120 MB of float32; larger circuits get coarser cells (still exact lines, see above)
# ... but no coarser than this fraction of the road's half width: with bend radii above the half width
# (circuits.py checks), the interpolation error cell^2 / (8 R) stays under 1/128 of the half width.
MAX_CELL_PER_HALF_WIDTH = 0.25
BASE_CELL_M = 0.25
MARGIN_M = 30.0


@dataclass(frozen=True)
class GridPlan:
    """Where and how fine a circuit's map will be, computed before anything is allocated."""

    origin: np.ndarray  # (2,) world (x, y) of cell (0, 0)
    cell_m: float
    rows: int
    cols: int

    @property
    def cells(self) -> int:
        return self.rows * self.cols


def plan_grid(points, half_width_m: float, cell_m: float = BASE_CELL_M, margin_m: float = MARGIN_M) -> GridPlan:
    """The grid a map of the closed line through ``points`` gets: ``cell_m`` cells, coarser if the
    circuit's extent (plus ``margin_m``) would take more than MAX_CELLS.

    Raises CircuitError when even MAX_CELLS cells would have to be coarser than MAX_CELL_PER_HALF_WIDTH
    of the half width (the circuit is too large for a map within the memory bound).
    """
    pts = np.asarray(points, dtype=np.float64)
    lo = pts.min(axis=0) - margin_m
    hi = pts.max(axis=0) + margin_m
    extent = hi - lo
    if not np.all(np.isfinite(extent)):
        raise CircuitError(f"the circuit's coordinates are not finite (extent {extent[0]} x {extent[1]} m)")
    needed_cell = float(np.sqrt(np.prod(extent) / MAX_CELLS))
    coarsest = max(cell_m, MAX_CELL_PER_HALF_WIDTH * half_width_m)
    if needed_cell > coarsest:
        wanted = float(np.prod(np.ceil(extent / cell_m) + 1))
        raise CircuitError(
            f"too large: it spans {extent[0]:.4g} x {extent[1]:.4g} m, a map of {wanted:.3g} cells of {cell_m:g} m "
            f"({wanted * 4 / 1e6:.3g} MB); the map is bounded at {MAX_CELLS:,} cells ({MAX_CELLS * 4 / 1e6:.0f} MB), "
            f"which needs {needed_cell:.3g} m cells, coarser than {MAX_CELL_PER_HALF_WIDTH:g} x the "
            f"{half_width_m:.3g} m half width"
        )
    cell_m = max(cell_m, needed_cell)
    cols = int(np.ceil((hi[0] - lo[0]) / cell_m)) + 1
    rows = int(np.ceil((hi[1] - lo[1]) / cell_m)) + 1
    return GridPlan(lo, cell_m, rows, cols)


@dataclass
class TrackMap:
    """Signed distance grid. World point (x, y) lies at grid column (x - origin_x) / cell_m, row (y - origin_y) / cell_m."""

    signed_distance_m: np.ndarray  # (rows, cols) float32
    origin_x: float
    origin_y: float
    cell_m: float
    half_width_m: float

    @classmethod
    def from_centerline(
        cls,
        centerline: np.ndarray,
        half_width_m: float,
        cell_m: float = BASE_CELL_M,
        margin_m: float = MARGIN_M,
        exact_band_m: float | None = None,
    ) -> "TrackMap":
        """Build the map for a closed center line given in driving order (either orientation).

        Its size is planned first (:func:`plan_grid`): a circuit too large for the memory bound is a
        CircuitError before anything is allocated."""
        pts = np.asarray(centerline, dtype=np.float64)
        if exact_band_m is None:
            exact_band_m = half_width_m + 6.0
        plan = plan_grid(pts, half_width_m, cell_m, margin_m)
        lo, cell_m, rows, cols = plan.origin, plan.cell_m, plan.rows, plan.cols
        grid_pts = (pts - lo) / cell_m

        # 1) Approximate unsigned distance everywhere: Euclidean distance transform of the drawn line.
        #    Fixed-point drawing (shift=4) keeps the polyline within 1/16 cell of the true curve.
        line_img = np.full((rows, cols), 255, np.uint8)
        poly = np.round(grid_pts * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(line_img, [poly], isClosed=True, color=0, thickness=1, lineType=cv2.LINE_8, shift=4)
        approx_m = cv2.distanceTransform(line_img, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * cell_m

        # 2) Side of the line: inside the closed polygon is the left side of a ccw loop.
        inside = np.zeros((rows, cols), np.uint8)
        cv2.fillPoly(inside, [poly], 1, lineType=cv2.LINE_8, shift=4)
        signed_area = 0.5 * np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
        left_is_inside = signed_area > 0
        sign = np.where((inside == 1) == left_is_inside, 1.0, -1.0).astype(np.float32)
        signed_m = np.clip(approx_m, 0, FAR_DISTANCE_M) * sign

        # 3) Exact point-to-segment distance in the band the camera and the car care about.
        band_r, band_c = np.nonzero(approx_m < exact_band_m)
        if band_r.size:
            xy = np.column_stack([lo[0] + band_c * cell_m, lo[1] + band_r * cell_m])
            signed_m[band_r, band_c] = signed_distance_to_loop(pts, xy)

        return cls(signed_m.astype(np.float32), float(lo[0]), float(lo[1]), float(cell_m), float(half_width_m))

    @property
    def world_to_grid(self) -> np.ndarray:
        """3x3 affine matrix taking homogeneous world (x, y, 1) to grid (col, row, 1)."""
        s = 1.0 / self.cell_m
        return np.array([[s, 0, -self.origin_x * s], [0, s, -self.origin_y * s], [0, 0, 1]])

    def signed_distance(self, x: float, y: float) -> float:
        """Bilinear signed distance (m) at a world point; far outside the grid counts as far away."""
        c = (x - self.origin_x) / self.cell_m
        r = (y - self.origin_y) / self.cell_m
        rows, cols = self.signed_distance_m.shape
        if not (0 <= c < cols - 1 and 0 <= r < rows - 1):
            return FAR_DISTANCE_M
        c0, r0 = int(c), int(r)
        fc, fr = c - c0, r - r0
        g = self.signed_distance_m[r0 : r0 + 2, c0 : c0 + 2].astype(np.float64)
        top = g[0, 0] * (1 - fc) + g[0, 1] * fc
        bottom = g[1, 0] * (1 - fc) + g[1, 1] * fc
        return float(top * (1 - fr) + bottom * fr)


def densify_loop(loop: np.ndarray, max_step_m: float) -> np.ndarray:
    """The same closed polyline with extra vertices on every segment longer than max_step_m."""
    loop = np.asarray(loop, np.float64)
    nxt = np.roll(loop, -1, axis=0)
    pieces = np.maximum(np.ceil(np.hypot(*(nxt - loop).T) / max_step_m).astype(int), 1)
    out = [a + (b - a) * (np.arange(k)[:, None] / k) for a, b, k in zip(loop, nxt, pieces)]
    return np.concatenate(out)


def signed_distance_to_loop(
    loop: np.ndarray, xy: np.ndarray, chunk: int = 200_000, max_step_m: float = 0.5
) -> np.ndarray:
    """Signed distance from points to a closed polyline (left of the driving direction > 0).

    The nearest segment is searched next to the nearest vertex, which is exact once vertices are
    evenly and densely spaced: long segments are first split into max_step_m pieces (same polyline).
    """
    loop = densify_loop(loop, max_step_m)
    a = loop
    b = np.roll(loop, -1, axis=0)
    seg = b - a
    seg_len2 = np.maximum(np.einsum("ij,ij->i", seg, seg), 1e-12)
    tree = cKDTree(loop)
    n = len(loop)
    out = np.empty(len(xy), np.float32)
    for start in range(0, len(xy), chunk):
        p = xy[start : start + chunk]
        _, nearest = tree.query(p)
        best = np.full(len(p), np.inf)
        best_signed = np.zeros(len(p))
        # The closest segment touches the nearest vertex: check the segments before and after it.
        for k in (nearest - 1) % n, nearest:
            ap = p - a[k]
            u = np.clip(np.einsum("ij,ij->i", ap, seg[k]) / seg_len2[k], 0.0, 1.0)
            closest = a[k] + u[:, None] * seg[k]
            d = np.hypot(*(p - closest).T)
            cross = seg[k, 0] * ap[:, 1] - seg[k, 1] * ap[:, 0]
            better = d < best
            best = np.where(better, d, best)
            best_signed = np.where(better, np.where(cross >= 0, d, -d), best_signed)
        out[start : start + chunk] = best_signed
    return out
