"""Camera geometry (closed-form pinhole answers) and the renderer's ground geometry on a straight."""

import math

import numpy as np
import pytest
from conftest import STADIUM_HALF_WIDTH_M, STADIUM_RADIUS_M

from pilotnet_brain.sim.camera import RED_LINE_WIDTH_M, CameraModel, Renderer

CAM = CameraModel()


def test_focal_and_intrinsics():
    f = 320 / math.tan(math.radians(30))
    assert CAM.focal_px == pytest.approx(f)
    np.testing.assert_allclose(CAM.intrinsics, [[f, 0, 320], [0, f, 240], [0, 0, 1]])


def test_project_and_pixel_to_ground_are_inverses():
    rng = np.random.default_rng(0)
    g = np.column_stack([rng.uniform(2, 60, 500), rng.uniform(-15, 15, 500)])
    np.testing.assert_allclose(CAM.pixel_to_ground(CAM.project(g)), g, rtol=1e-9, atol=1e-9)
    uv = np.column_stack([rng.uniform(0, 640, 500), rng.uniform(CAM.horizon_row + 5, 480, 500)])
    np.testing.assert_allclose(CAM.project(CAM.pixel_to_ground(uv)), uv, atol=1e-7)


def expected_pixel(cam, X, Y):
    """Independent pinhole model: camera at (forward_m, 0, height_m) pitched down by pitch_rad."""
    dx, dz = X - cam.forward_m, -cam.height_m
    c, s = math.cos(cam.pitch_rad), math.sin(cam.pitch_rad)
    depth = dx * c - dz * s  # along the optical axis
    down = dx * s + dz * c  # camera "up" component ... negated below
    f = cam.focal_px
    return cam.width / 2 + f * (-Y) / depth, cam.height / 2 - f * down / depth


@pytest.mark.parametrize(
    "cam", [CAM, CameraModel(pitch_rad=0.0), CameraModel(pitch_rad=math.radians(10), height_m=1.6, forward_m=0.0)]
)
def test_project_matches_pinhole_model(cam):
    for X, Y in [(3.0, 0.0), (10.0, 2.0), (25.0, -4.0), (60.0, 0.5)]:
        u, v = cam.project(np.array([[X, Y]]))[0]
        eu, ev = expected_pixel(cam, X, Y)
        assert u == pytest.approx(eu, abs=1e-9)
        assert v == pytest.approx(ev, abs=1e-9)
    # Straight ahead projects to the centre column; left of the car (Y > 0) to the left half.
    uv = cam.project(np.array([[4.0, 0.0], [40.0, 0.0], [10.0, 1.0], [10.0, -1.0]]))
    np.testing.assert_allclose(uv[:2, 0], cam.width / 2, atol=1e-9)
    assert uv[2, 0] < cam.width / 2 < uv[3, 0]
    # Row of a ground point straight ahead: angle below horizontal minus the pitch.
    for X in (3.0, 8.0, 30.0):
        alpha = math.atan2(cam.height_m, X - cam.forward_m) - cam.pitch_rad
        assert cam.row_of_ground_distance(X) == pytest.approx(cam.height / 2 + cam.focal_px * math.tan(alpha), abs=1e-9)


def test_horizon_row_consistent_with_pitch():
    assert CameraModel(pitch_rad=0.0).horizon_row == pytest.approx(240.0)
    for pitch_deg in (1.0, 3.0, 8.0):
        cam = CameraModel(pitch_rad=math.radians(pitch_deg))
        assert cam.horizon_row == pytest.approx(240 - cam.focal_px * math.tan(math.radians(pitch_deg)))
        # Ground at (practically) infinity projects onto the horizon row, from below.
        v_far = cam.project(np.array([[1e7, 0.0]]))[0, 1]
        assert v_far == pytest.approx(cam.horizon_row, abs=1e-3)
        assert v_far > cam.horizon_row
    # Pitching further down raises the horizon in the image.
    assert CameraModel(pitch_rad=0.1).horizon_row < CameraModel(pitch_rad=0.05).horizon_row
    assert CAM.horizon_row < CAM.first_ground_row < CAM.height


# ------------------------------------------------------------------------------ renderer


def is_red(px):
    px = px.astype(int)
    return px[0] - max(px[1], px[2]) > 100


def is_asphalt(px):
    px = px.astype(int)
    return abs(px[0] - px[1]) < 12 and abs(px[1] - px[2]) < 12 and 60 < px[0] < 130


def is_white(px):
    return bool(np.all(px.astype(int) > 200))


def is_grass(px):
    px = px.astype(int)
    return px[1] - max(px[0], px[2]) > 40


def is_sky(px):
    px = px.astype(int)
    return px[2] > 220 and px[2] > px[0] + 30


def classify(px):
    for name, fn in (
        ("red", is_red),
        ("white", is_white),
        ("sky", is_sky),
        ("grass", is_grass),
        ("asphalt", is_asphalt),
    ):
        if fn(px):
            return name
    return "other"


def world_to_car_independent(pts, x, y, yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    d = pts - (x, y)
    return np.column_stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]])


# On the stadium's bottom straight (y = -R, driving +x) the signed distance of (x, y) is y + R.
POSES = [(0.0, 0.0), (1.0, 0.0), (-1.2, 0.0), (0.8, 0.08), (-0.5, -0.12), (0.0, 0.2)]  # (offset m, yaw rad)


@pytest.fixture(scope="module")
def renderer(stadium_track):
    return Renderer(stadium_track, CAM)


@pytest.mark.parametrize("offset,yaw", POSES)
def test_rendered_lines_lie_where_projection_puts_them(renderer, offset, yaw):
    car_x, car_y = -60.0, -STADIUM_RADIUS_M + offset
    img = renderer.render(car_x, car_y, yaw)
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    hw = STADIUM_HALF_WIDTH_M
    checks = {
        0.0: "red",
        1.0: "asphalt",
        -1.0: "asphalt",
        2.5: "asphalt",
        -2.5: "asphalt",
        hw: "white",
        -hw: "white",
        hw + 1.5: "grass",
        -(hw + 1.5): "grass",
        20.0: "grass",
    }
    n_checked = 0
    for d, want in checks.items():
        # The world line at signed distance d, sampled every centimetre from 2.5 m to 40 m ahead,
        # projected; on each image row take the exact crossing (rows are where pixels are).
        xs = car_x + np.arange(2.5, 40.0, 0.01)
        world = np.column_stack([xs, np.full(len(xs), -STADIUM_RADIUS_M + d)])
        car = world_to_car_independent(world, car_x, car_y, yaw)
        uv = CAM.project(car[car[:, 0] > 2.5])  # in front of the camera, below the horizon
        order = np.argsort(uv[:, 1])
        for v in range(int(np.ceil(uv[:, 1].min())), 480, 4):
            if v > uv[:, 1].max():
                break
            u = np.interp(v, uv[order, 1], uv[order, 0])
            ui = int(round(u))
            if not 0 <= ui < 640:
                continue
            assert classify(img[v, ui]) == want, (d, u, v, img[v, ui])
            n_checked += 1
    assert n_checked >= 250
    # Above the horizon: sky, everywhere across the image.
    for v in range(0, int(math.floor(CAM.horizon_row)) - 1, 7):
        for u in (0, 200, 320, 639):
            assert is_sky(img[v, u]), (u, v, img[v, u])


def test_every_ground_pixel_has_the_colour_of_its_ground_point(renderer):
    """Back-project each pixel to the ground; away from the colour boundaries the class must agree."""
    offset, yaw = 0.6, 0.05
    car_x, car_y = -40.0, -STADIUM_RADIUS_M + offset
    img = renderer.render(car_x, car_y, yaw)
    v0 = CAM.first_ground_row
    vv, uu = np.mgrid[v0:480:3, 0:640:3]
    g = CAM.pixel_to_ground(np.column_stack([uu.ravel(), vv.ravel()]).astype(float))
    c, s = math.cos(yaw), math.sin(yaw)
    wy = car_y + s * g[:, 0] + c * g[:, 1]
    d = np.abs(wy + STADIUM_RADIUS_M)
    hw = STADIUM_HALF_WIDTH_M
    want = np.where(
        d < 0.10,
        "red",
        np.where(
            d < hw - 0.2,
            "asphalt",
            np.where((d > hw - 0.05) & (d < hw + 0.05), "white", np.where(d > hw + 0.2, "grass", "skip")),
        ),
    )
    want[(d > 0.15) & (d < 0.2)] = "asphalt"
    want[(d >= 0.10) & (d <= 0.15)] = "skip"  # red line edge (0.125 m)
    got = np.array([classify(img[v, u]) for u, v in zip(uu.ravel(), vv.ravel())])
    keep = want != "skip"
    assert keep.sum() > 10000
    mismatch = keep & (got != want)
    assert mismatch.sum() == 0, list(zip(d[mismatch][:5], got[mismatch][:5], want[mismatch][:5]))
    # The band above the first ground row is sky too (rows above it are never ground).
    assert all(is_sky(img[v, 320]) for v in range(0, v0, 5))


def test_red_line_has_its_nominal_width(renderer):
    car_x, car_y = -60.0, -STADIUM_RADIUS_M
    img = renderer.render(car_x, car_y, 0.0)
    v = 470  # close to the car: ~6 mm of ground per pixel
    red = np.array([is_red(img[v, u]) for u in range(640)])
    cols = np.flatnonzero(red)
    assert cols.size and np.all(np.diff(cols) == 1)
    edges = CAM.pixel_to_ground(np.array([[cols[0] - 0.5, v], [cols[-1] + 0.5, v]], float))
    width = edges[0, 1] - edges[1, 1]
    assert width == pytest.approx(RED_LINE_WIDTH_M, abs=0.05)


@pytest.mark.parametrize("pose", [(-40.0, -STADIUM_RADIUS_M + 0.6, 0.05), (-60.0, -STADIUM_RADIUS_M, -0.3)])
def test_no_road_pixels_far_from_the_track(renderer, stadium_track, pose):
    x, y, yaw = pose
    img = renderer.render(x, y, yaw)
    v0 = CAM.first_ground_row
    sub = img[v0:].astype(int)
    not_grass = (sub[..., 1] - np.maximum(sub[..., 0], sub[..., 2])) <= 40
    vv, uu = np.nonzero(not_grass)
    g = CAM.pixel_to_ground(np.column_stack([uu, vv + v0]).astype(float))
    wx = x + math.cos(yaw) * g[:, 0] - math.sin(yaw) * g[:, 1]
    wy = y + math.sin(yaw) * g[:, 0] + math.cos(yaw) * g[:, 1]
    d = np.array([stadium_track.signed_distance(a, b) for a, b in zip(wx, wy)])
    stray = np.abs(d) > STADIUM_HALF_WIDTH_M + 1.5
    assert stray.sum() == 0, list(zip(uu[stray], vv[stray] + v0, d[stray]))


def test_render_into_buffer_and_far_from_track(renderer):
    out = np.zeros((480, 640, 3), np.uint8)
    img = renderer.render(-60.0, -STADIUM_RADIUS_M, 0.0, out)
    assert img is out and out.any()
    # Far outside the map: everything below the horizon is grass.
    far = renderer.render(5000.0, 5000.0, 1.0)
    assert all(is_grass(far[v, u]) for v in range(CAM.first_ground_row, 480, 20) for u in range(0, 640, 40))
