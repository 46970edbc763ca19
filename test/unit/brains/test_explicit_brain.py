"""Explicit brain: perception on rendered frames with known geometry, steering sign, lost line, full lap."""

import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import STADIUM_RADIUS_M, STADIUM_STRAIGHT_M

from pilotnet_brain.brains import make_brain
from pilotnet_brain.brains.explicit import ExplicitBrain, ExplicitBrainParams, line_turns
from pilotnet_brain.evaluation.metrics import compute_metrics
from pilotnet_brain.sim.camera import CameraModel, Renderer
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.world import SimConfig, World, run_episode

CAR_X = -60.0  # on the stadium's bottom straight (y = -R, driving +x), 40 m before its end


@pytest.fixture(scope="module")
def renderer(stadium_track):
    return Renderer(stadium_track, CameraModel())


def frame(renderer, offset, yaw=0.0):
    """Frame with the car `offset` m left (+) of the center line, heading `yaw` relative to it."""
    return renderer.render(CAR_X, -STADIUM_RADIUS_M + offset, yaw)


@pytest.mark.parametrize("offset", [-1.2, -0.5, 0.0, 0.7, 1.2])
def test_line_points_are_the_center_line_in_car_frame(renderer, offset):
    pts = ExplicitBrain().line_points(frame(renderer, offset))
    assert len(pts) >= 10
    assert np.all(np.diff(pts[:, 0]) > 0)  # near to far
    np.testing.assert_allclose(pts[:, 1], -offset, atol=0.04)  # the line is at Y = -offset


def test_line_points_with_heading_error(renderer):
    yaw = 0.1  # car turned 0.1 rad left of the track: the line runs to the right, Y = -tan(yaw) X
    pts = ExplicitBrain().line_points(frame(renderer, 0.0, yaw))
    np.testing.assert_allclose(pts[:, 1], -math.tan(yaw) * pts[:, 0], atol=0.06)


@pytest.mark.parametrize("offset", [0.3, 1.0, 2.5])
def test_steers_back_towards_the_line(renderer, offset):
    brain = ExplicitBrain()
    left = brain.step(frame(renderer, offset), 0.0).command
    brain.reset()
    right = brain.step(frame(renderer, -offset), 0.0).command
    assert left.w < 0 < right.w  # left of the line -> turn right, and vice versa
    assert left.w == pytest.approx(-right.w, rel=0.1)  # symmetric on a straight
    # On a straight the speed is the full speed.
    assert left.v == pytest.approx(ExplicitBrainParams().max_speed_mps)


def test_on_the_line_goes_straight(renderer):
    out = ExplicitBrain().step(frame(renderer, 0.0), 0.0)
    assert out.blind == ""
    cmd = out.command
    assert abs(cmd.w) < 0.02
    assert cmd.v == pytest.approx(ExplicitBrainParams().max_speed_mps)


def test_heading_error_is_corrected(renderer):
    brain = ExplicitBrain()
    assert brain.step(frame(renderer, 0.0, 0.1), 0.0).command.w < 0  # pointing left -> turn right
    brain.reset()
    assert brain.step(frame(renderer, 0.0, -0.1), 0.0).command.w > 0


DT = 1 / 30  # camera period


def black_frame():
    return np.zeros((480, 640, 3), np.uint8)


def noise_frame(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def curve_frame(renderer, angle=0.4):
    """Frame on the center line of the stadium's right-hand curve (radius STADIUM_RADIUS_M, turning left)."""
    a = -math.pi / 2 + angle
    x = STADIUM_STRAIGHT_M / 2 + STADIUM_RADIUS_M * math.cos(a)
    return renderer.render(x, STADIUM_RADIUS_M * math.sin(a), a + math.pi / 2)


def blind_run(brain, frames, stamp0):
    """Outputs for `frames` consecutive frames at the camera rate."""
    return [brain.step(f, stamp0 + (i + 1) * DT) for i, f in enumerate(frames)]


@pytest.mark.parametrize("picture", ["black", "noise"])
def test_a_frame_without_the_line_brakes_to_a_stop_along_the_last_path(renderer, picture):
    p = ExplicitBrainParams()
    brain = ExplicitBrain()
    seen = brain.step(curve_frame(renderer), 0.0)
    assert not seen.blind and seen.command.v > 0 and seen.command.w > 0
    n = int(seen.command.v / (p.blind_decel_mps2 * DT)) + 3
    frames = [black_frame()] * n if picture == "black" else [noise_frame(k) for k in range(n)]
    outs = blind_run(brain, frames, 0.0)
    assert all(o.blind == "the line shows on 0 of 13 scan rows" for o in outs)
    speeds = np.array([o.command.v for o in outs])
    expected = np.maximum(seen.command.v - p.blind_decel_mps2 * DT * np.arange(1, n + 1), 0.0)
    np.testing.assert_allclose(speeds, expected, atol=1e-12)  # brakes at blind_decel_mps2 ...
    assert speeds[-1] == 0.0 and outs[-1].command.w == 0.0  # ... to a stop
    # ... following the curvature of the road it last saw (the fit's, within its error), no correction.
    curvatures = [o.command.w / o.command.v for o in outs if o.command.v > 0]
    np.testing.assert_allclose(curvatures, curvatures[0], rtol=1e-12)
    assert curvatures[0] == pytest.approx(1 / STADIUM_RADIUS_M, rel=0.25)
    # It sees the line again: it drives again.
    again = brain.step(frame(renderer, 0.5), (n + 1) * DT)
    assert not again.blind and again.command.v == pytest.approx(p.max_speed_mps)


def test_blind_before_ever_seeing_the_line_does_not_move(renderer):
    grass_only = renderer.render(5000.0, 5000.0, 0.0)  # no track in view
    for picture in (grass_only, black_frame(), noise_frame()):
        brain = ExplicitBrain()
        out = brain.step(picture, 0.0)
        assert out.blind and (out.command.v, out.command.w) == (0.0, 0.0)


def test_noise_rows_are_clutter_not_line(renderer):
    brain = ExplicitBrain()
    assert len(brain.line_points(noise_frame())) == 0
    # Noise over the sky and the far rows only: the near rows still show the line.
    img = frame(renderer, 0.3).copy()
    img[:300] = noise_frame()[:300]
    pts = brain.line_points(img)
    assert len(pts) == np.sum(brain.rows >= 300) and not brain.step(img, 0.0).blind


@pytest.mark.parametrize(
    ("occluded", "blind"),
    [
        ("the line's half (right)", True),
        ("the other half (left)", False),
        ("the far rows (above row 300)", False),
        ("all but the two nearest rows (above row 380)", True),
    ],
)
def test_half_occluded_frames(renderer, occluded, blind):
    """The car 1 m left of the line: the line is in the right half of the image."""
    clear = frame(renderer, 1.0)
    img = clear.copy()
    if "right" in occluded:
        img[:, 320:] = 0
    elif "left" in occluded:
        img[:, :320] = 0
    else:
        img[: int(occluded.split("row ")[1].rstrip(")"))] = 0
    brain = ExplicitBrain()
    out = brain.step(img, 0.0)
    assert bool(out.blind) == blind, out.blind
    if blind:
        assert (out.command.v, out.command.w) == (0.0, 0.0)  # never driven: stays put
    elif "left" in occluded:
        assert out == replace(ExplicitBrain().step(clear, 0.0), inference_s=out.inference_s)
    else:
        assert out.command.w < 0 and out.command.v > 0  # still steers back towards the line


def test_red_marks_that_are_no_line_are_blind(renderer):
    """One thin red mark per scan row, zig-zagging about the centre: each row alone could be the line."""
    p = ExplicitBrainParams()
    brain = ExplicitBrain()
    img = renderer.render(5000.0, 5000.0, 0.0)  # grass
    for i, row in enumerate(brain.rows):
        u = 320 + (100 if i % 2 else -100)
        img[row, u - 2 : u + 3] = (220, 30, 30)
    assert len(brain.line_points(img)) == len(brain.rows)
    out = brain.step(img, 0.0)
    turns = len(brain.rows) - 2
    assert out.blind == f"the red marks are no line (they turn {turns} times across the scan rows)"
    assert turns > p.max_line_turns


@pytest.mark.parametrize(
    ("columns", "turns"),
    [
        ([320, 320.4, 319.8, 320.3, 319.9, 320.1], 0),  # straight ahead: sub-pixel jitter does not count
        ([624, 598, 579, 552, 531, 514, 491, 466, 431, 390, 335, 255, 41], 0),  # a hairpin (Hockenheim)
        ([400, 380, 365, 360, 361.5, 359.5, 370, 390, 420], 1),  # a curve's apex in view, jitter at the apex
        ([328.5, 322.5, 320, 319.5, 324, 331, 347.5, 368, 398.5, 429, 456.5, 470.5, 467], 2),  # S-bend (montmelo)
        ([299, 292.5, 289, 286, 286, 287, 289, 290, 289.5, 285.5, 279, 275, 278.5], 3),  # bends far ahead (Catalunya)
        ([220, 420, 220, 420, 220, 420], 4),  # zig-zag
    ],
)
def test_line_turns(columns, turns):
    assert line_turns(np.array(columns, float), ExplicitBrainParams().column_jitter_px) == turns


def test_make_brain_builds_explicit():
    assert isinstance(make_brain("explicit"), ExplicitBrain)
    with pytest.raises(ValueError):
        make_brain("nope")


def test_completes_simple_circuit_lockstep():
    circuit = load_circuit("simple_circuit")
    log = run_episode(World(circuit, SimConfig(latency_s=0.03)), ExplicitBrain())
    m = compute_metrics(log.record)
    assert m["end_reason"] == "lap_completed"
    assert m["completed_pct"] == 100.0
    assert m["off_track_events"] == 0
    assert m["position_deviation_mae_m"] < 0.3
    assert m["lap_time_s"] is not None and m["lap_time_s"] < 75.0  # BehaviorMetrics' time-out
