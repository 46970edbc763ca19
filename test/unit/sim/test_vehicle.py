"""Vehicle: acceleration, braking, yaw-rate and speed limits; constant commands drive exact circles."""

import math

import numpy as np
import pytest

from pilotnet_brain.sim.vehicle import VehicleLimits, VehicleState, step_vehicle

LIM = VehicleLimits()
DT = 0.01


def drive(state, v_cmd, w_cmd, seconds, dt=DT, limits=LIM):
    states = [state]
    for _ in range(int(round(seconds / dt))):
        states.append(step_vehicle(states[-1], v_cmd, w_cmd, dt, limits))
    return states


def test_throttle_limit():
    states = drive(VehicleState(0, 0, 0), 10.0, 0.0, 1.0)
    dv = np.diff([s.v for s in states])
    assert np.all(dv <= LIM.accel_mps2 * DT + 1e-12)
    assert states[-1].v == pytest.approx(6.0, abs=1e-9)  # 1 s at 6 m/s^2
    states = drive(states[-1], 10.0, 0.0, 1.0)
    assert states[-1].v == pytest.approx(10.0, abs=1e-9)  # reaches the command, no overshoot
    assert max(s.v for s in states) <= 10.0 + 1e-12
    # Distance from rest under constant acceleration: a t^2 / 2 (midpoint rule is exact here up to one step).
    s1 = drive(VehicleState(0, 0, 0), 10.0, 0.0, 1.0)
    assert s1[-1].x == pytest.approx(0.5 * 6.0 * 1.0**2, abs=6.0 * DT)


def test_brake_limit():
    states = drive(VehicleState(0, 0, 0, v=10.0), 0.0, 0.0, 0.5)
    dv = np.diff([s.v for s in states])
    assert np.all(dv >= -LIM.brake_mps2 * DT - 1e-12)
    assert states[-1].v == pytest.approx(10.0 - 12.0 * 0.5, abs=1e-9)
    states = drive(states[-1], 0.0, 0.0, 1.0)
    assert states[-1].v == 0.0 and min(s.v for s in states) >= 0.0  # stops, never reverses


def test_yaw_rate_and_yaw_accel_limits():
    states = drive(VehicleState(0, 0, 0, v=5.0), 5.0, 10.0, 1.0)
    w = np.array([s.w for s in states])
    assert np.all(np.diff(w) <= LIM.yaw_accel_rps2 * DT + 1e-12)
    assert w[int(0.1 / DT)] == pytest.approx(2.0, abs=1e-9)  # 0.1 s at 20 rad/s^2
    assert w.max() == pytest.approx(LIM.max_yaw_rate_rps)  # clamped at 3 rad/s
    states = drive(states[-1], 5.0, -10.0, 1.0)
    w = np.array([s.w for s in states])
    assert np.all(np.diff(w) >= -LIM.yaw_accel_rps2 * DT - 1e-12)
    assert w.min() == pytest.approx(-LIM.max_yaw_rate_rps)
    assert all(-math.pi <= s.yaw <= math.pi for s in states)  # yaw stays wrapped


def test_speed_limits_clamp():
    states = drive(VehicleState(0, 0, 0), 100.0, 0.0, 5.0)
    assert max(s.v for s in states) == pytest.approx(LIM.max_speed_mps)
    states = drive(VehicleState(0, 0, 0), -100.0, 0.0, 3.0)
    assert min(s.v for s in states) == pytest.approx(-LIM.max_reverse_mps)
    assert states[-1].x == pytest.approx(-2.0 * 3.0, abs=0.5)  # backing up along -x
    custom = VehicleLimits(max_speed_mps=4.0)
    states = drive(VehicleState(0, 0, 0), 9.0, 0.0, 2.0, limits=custom)
    assert states[-1].v == pytest.approx(4.0)


@pytest.mark.parametrize("v,w", [(5.0, 0.5), (10.0, -1.0), (3.0, 2.0)])
def test_constant_command_drives_circle_of_radius_v_over_w(v, w):
    start = VehicleState(2.0, -1.0, 0.7, v=v, w=w)  # already at the commanded speeds
    states = drive(start, v, w, abs(2 * math.pi / w))
    radius = v / abs(w)
    left = math.copysign(1.0, w)
    cx = start.x - left * radius * math.sin(start.yaw)
    cy = start.y + left * radius * math.cos(start.yaw)
    r = np.array([math.hypot(s.x - cx, s.y - cy) for s in states])
    np.testing.assert_allclose(r, radius, atol=1e-3)
    # Heading turns at exactly w, and the car is where the exact arc puts it for that heading.
    for k in (1, len(states) // 3, len(states) - 1):
        yaw = start.yaw + k * w * DT
        assert math.remainder(states[k].yaw - yaw, math.tau) == pytest.approx(0.0, abs=1e-9)
        assert states[k].x == pytest.approx(cx + left * radius * math.sin(yaw), abs=1e-3)
        assert states[k].y == pytest.approx(cy - left * radius * math.cos(yaw), abs=1e-3)


def test_converges_to_circle_from_rest():
    states = drive(VehicleState(0, 0, 0), 6.0, 0.75, 30.0)  # radius 8 m
    pts = np.array([(s.x, s.y) for s in states[-900:]])  # the last 9 s (> one 8.4 s period)
    # Algebraic circle fit: x^2 + y^2 + D x + E y + F = 0.
    a = np.column_stack([pts, np.ones(len(pts))])
    b = -(pts**2).sum(axis=1)
    d, e, f = np.linalg.lstsq(a, b, rcond=None)[0]
    centre = np.array([-d / 2, -e / 2])
    radius = math.sqrt(centre @ centre - f)
    assert radius == pytest.approx(8.0, abs=1e-3)
    np.testing.assert_allclose(np.linalg.norm(pts - centre, axis=1), 8.0, atol=1e-3)
    # Turning left (w > 0) from yaw 0: the centre lies on the +y side.
    assert centre[1] > 0
