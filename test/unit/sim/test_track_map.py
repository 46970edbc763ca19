"""TrackMap: signed distance grid of a closed center line, checked against closed-form answers."""

import math

import numpy as np
import pytest

from pilotnet_brain.sim.track_map import FAR_DISTANCE_M, TrackMap, signed_distance_to_loop

R = 20.0
HALF_WIDTH = 3.5


def circle(n=4000, radius=R, cx=3.0, cy=-7.0):
    """Circle of `radius` about (cx, cy), counter-clockwise; sag of the chords is ~1e-5 m."""
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.column_stack([cx + radius * np.cos(a), cy + radius * np.sin(a)])


@pytest.fixture(scope="module")
def ccw_map():
    return TrackMap.from_centerline(circle(), HALF_WIDTH)


@pytest.fixture(scope="module")
def cw_map():
    return TrackMap.from_centerline(circle()[::-1], HALF_WIDTH)


def ring_points(rng, n, r_lo, r_hi, cx=3.0, cy=-7.0):
    """Random points (not on grid nodes) at radius in [r_lo, r_hi] about the circle centre."""
    r = rng.uniform(r_lo, r_hi, n)
    a = rng.uniform(0, 2 * math.pi, n)
    return np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)]), r


def test_ccw_circle_signed_distance_is_R_minus_r(ccw_map):
    rng = np.random.default_rng(1)
    xy, r = ring_points(rng, 400, R - 9.0, R + 9.0)  # inside the exact band (half width + 6)
    got = np.array([ccw_map.signed_distance(x, y) for x, y in xy])
    np.testing.assert_allclose(got, R - r, atol=2e-3)
    # Sanity of the sign convention: inside a ccw loop is the left of the driving direction.
    assert ccw_map.signed_distance(3.0 + R - 2.0, -7.0) == pytest.approx(2.0, abs=2e-3)
    assert ccw_map.signed_distance(3.0 + R + 2.0, -7.0) == pytest.approx(-2.0, abs=2e-3)


def test_cw_circle_sign_is_flipped(cw_map):
    rng = np.random.default_rng(2)
    xy, r = ring_points(rng, 400, R - 9.0, R + 9.0)
    got = np.array([cw_map.signed_distance(x, y) for x, y in xy])
    np.testing.assert_allclose(got, r - R, atol=2e-3)


def test_between_grid_cells_bilinear_is_exact_to_2mm(ccw_map):
    # Points exactly at cell centres and at odd fractions of a cell: interpolation, not node look-up.
    c = ccw_map.cell_m
    for frac in (0.5, 0.137, 0.91):
        for k in range(-30, 31, 3):
            x = ccw_map.origin_x + (round((3.0 + R + 0.1 * k - ccw_map.origin_x) / c) + frac) * c
            y = ccw_map.origin_y + (round((-7.0 - ccw_map.origin_y) / c) + frac) * c
            r = math.hypot(x - 3.0, y + 7.0)
            assert ccw_map.signed_distance(x, y) == pytest.approx(R - r, abs=2e-3)


def test_far_field_outside_exact_band_is_close(ccw_map):
    # Circle centre: 20 m from the line, outside the exact band; distance transform is within a cell.
    assert ccw_map.signed_distance(3.0, -7.0) == pytest.approx(R, abs=ccw_map.cell_m)
    # Outside the loop, 25 m from the line, still on the grid (margin 30 m).
    assert ccw_map.signed_distance(3.0 + R + 25.0, -7.0) == pytest.approx(-25.0, abs=ccw_map.cell_m)


def test_far_points_clip(ccw_map):
    for x, y in [(1e4, 0.0), (-1e4, 5.0), (0.0, 1e5), (3.0 + R + 31.0, -7.0)]:
        assert ccw_map.signed_distance(x, y) == FAR_DISTANCE_M
    assert np.abs(ccw_map.signed_distance_m).max() <= FAR_DISTANCE_M


def test_grid_layout_matches_world_to_grid(ccw_map):
    m = ccw_map.world_to_grid
    x, y = 21.1, -4.3  # 1.9 m inside the line
    col, row, one = m @ np.array([x, y, 1.0])
    assert one == 1.0
    assert col == pytest.approx((x - ccw_map.origin_x) / ccw_map.cell_m)
    assert row == pytest.approx((y - ccw_map.origin_y) / ccw_map.cell_m)
    # A grid node holds the distance of its own world point.
    r0, c0 = int(round(row)), int(round(col))
    xn, yn = ccw_map.origin_x + c0 * ccw_map.cell_m, ccw_map.origin_y + r0 * ccw_map.cell_m
    assert ccw_map.signed_distance_m[r0, c0] == pytest.approx(R - math.hypot(xn - 3.0, yn + 7.0), abs=2e-3)


def brute_force_signed_distance(loop, xy):
    """Min over every segment; sign from an even-odd point-in-polygon test and the loop's orientation."""
    a = loop
    b = np.roll(loop, -1, axis=0)
    seg = b - a
    ap = xy[:, None, :] - a[None]
    u = np.clip(np.einsum("pkj,kj->pk", ap, seg) / np.einsum("kj,kj->k", seg, seg), 0, 1)
    closest = a[None] + u[..., None] * seg[None]
    d = np.linalg.norm(xy[:, None, :] - closest, axis=2).min(axis=1)
    # even-odd ray casting along +x
    xi, yi = a[:, 0], a[:, 1]
    xj, yj = b[:, 0], b[:, 1]
    px, py = xy[:, 0:1], xy[:, 1:2]
    crosses = ((yi > py) != (yj > py)) & (px < (xj - xi) * (py - yi) / (yj - yi + 1e-300) + xi)
    inside = crosses.sum(axis=1) % 2 == 1
    area = 0.5 * np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])
    return np.where(inside == (area > 0), d, -d)


def flower(n=1200):
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = 30.0 * (1 + 0.25 * np.sin(5 * t))
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


@pytest.mark.parametrize("reverse", [False, True])
def test_signed_distance_to_loop_matches_brute_force(reverse):
    loop = flower()
    if reverse:
        loop = loop[::-1]
    rng = np.random.default_rng(3)
    # Random points near the non-convex loop (where the map uses the exact distance).
    idx = rng.integers(0, len(loop), 1500)
    xy = loop[idx] + rng.normal(0, 3.0, (1500, 2))
    got = signed_distance_to_loop(loop, xy)
    want = brute_force_signed_distance(loop, xy)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_signed_distance_to_loop_exact_for_uneven_sampling():
    # Bottom side is one 100 m segment; the top side (10 m away) is sampled every 0.5 m.
    top = np.column_stack([np.linspace(100, 0, 201), np.full(201, 10.0)])
    loop = np.vstack([[0.0, 0.0], [100.0, 0.0], top])
    xy = np.array([[50.0, 4.0], [50.0, 1.0]])
    np.testing.assert_allclose(signed_distance_to_loop(loop, xy), brute_force_signed_distance(loop, xy), atol=1e-4)
    np.testing.assert_allclose(signed_distance_to_loop(loop, xy), [4.0, 1.0], atol=1e-4)
