"""The F1 car: planar unicycle driven by (v, w) commands, like Gazebo's planar-move plugin,
plus acceleration and speed limits so that a command takes effect gradually."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VehicleLimits:
    max_speed_mps: float = 15.0
    max_reverse_mps: float = 2.0
    accel_mps2: float = 6.0  # throttle
    brake_mps2: float = 12.0  # deceleration
    max_yaw_rate_rps: float = 3.0
    yaw_accel_rps2: float = 20.0


@dataclass
class VehicleState:
    x: float
    y: float
    yaw: float
    v: float = 0.0  # forward speed, m/s
    w: float = 0.0  # yaw rate, rad/s


def _approach(current: float, target: float, max_up: float, max_down: float) -> float:
    return current + min(max(target - current, -max_down), max_up)


def step_vehicle(
    state: VehicleState, v_cmd: float, w_cmd: float, dt: float, limits: VehicleLimits = VehicleLimits()
) -> VehicleState:
    """Advance the car by dt seconds towards the commanded (v, w); returns a new state."""
    v_target = min(max(v_cmd, -limits.max_reverse_mps), limits.max_speed_mps)
    w_target = min(max(w_cmd, -limits.max_yaw_rate_rps), limits.max_yaw_rate_rps)
    speeding_up = abs(v_target) > abs(state.v)
    up = limits.accel_mps2 * dt if speeding_up else limits.brake_mps2 * dt
    v = _approach(state.v, v_target, up, up)
    w = _approach(state.w, w_target, limits.yaw_accel_rps2 * dt, limits.yaw_accel_rps2 * dt)
    # Midpoint integration of the unicycle keeps arcs exact to second order.
    yaw_mid = state.yaw + 0.5 * w * dt
    x = state.x + v * math.cos(yaw_mid) * dt
    y = state.y + v * math.sin(yaw_mid) * dt
    yaw = math.remainder(state.yaw + w * dt, math.tau)
    return VehicleState(x, y, yaw, v, w)
