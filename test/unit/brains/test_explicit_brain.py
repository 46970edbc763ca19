"""Explicit brain: perception on rendered frames with known geometry, steering sign, lost line, full lap."""

import math

import numpy as np
import pytest
from conftest import STADIUM_RADIUS_M

from pilotnet_brain.brains import make_brain
from pilotnet_brain.brains.explicit import ExplicitBrain, ExplicitBrainParams
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
    cmd = ExplicitBrain().step(frame(renderer, 0.0), 0.0).command
    assert abs(cmd.w) < 0.02
    assert cmd.v == pytest.approx(ExplicitBrainParams().max_speed_mps)


def test_heading_error_is_corrected(renderer):
    brain = ExplicitBrain()
    assert brain.step(frame(renderer, 0.0, 0.1), 0.0).command.w < 0  # pointing left -> turn right
    brain.reset()
    assert brain.step(frame(renderer, 0.0, -0.1), 0.0).command.w > 0


def test_lost_line_creeps_and_turns_towards_last_side(renderer):
    p = ExplicitBrainParams()
    grass_only = renderer.render(5000.0, 5000.0, 0.0)  # no track in view
    brain = ExplicitBrain()
    cmd = brain.step(grass_only, 0.0).command
    assert (cmd.v, cmd.w) == (p.lost_speed_mps, p.lost_yaw_rate_rps)  # never seen: default left
    # Having last seen the line on the right (car left of it), it turns right when the line is lost.
    brain.reset()
    brain.step(frame(renderer, 1.0), 0.0)
    cmd = brain.step(grass_only, 1 / 30).command
    assert (cmd.v, cmd.w) == (p.lost_speed_mps, -p.lost_yaw_rate_rps)
    # ... and left when it was last seen on the left.
    brain.reset()
    brain.step(frame(renderer, -1.0), 0.0)
    cmd = brain.step(grass_only, 1 / 30).command
    assert (cmd.v, cmd.w) == (p.lost_speed_mps, p.lost_yaw_rate_rps)
    # A black frame is "no line" too.
    brain.reset()
    assert brain.step(np.zeros((480, 640, 3), np.uint8), 0.0).command.v == p.lost_speed_mps


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
