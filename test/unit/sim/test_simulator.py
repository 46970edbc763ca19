"""Simulator: clocks, latency, end conditions and frame hooks, driven by small fake brains."""

import random
import time

import numpy as np
import pytest

from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.control import BrainOutput, Command
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.world import SimConfig, World, run_episode, track_map_for


@pytest.fixture(scope="module")
def circuit():
    return load_circuit("simple_circuit")


class ConstantBrain:
    """Always the same command; remembers what it saw."""

    def __init__(self, v, w, name="constant"):
        self.command = Command(v, w)
        self.name = name
        self.stamps = []
        self.shapes = set()
        self.resets = 0

    def reset(self):
        self.resets += 1
        self.stamps = []

    def step(self, image, stamp):
        self.stamps.append(stamp)
        self.shapes.add((image.shape, image.dtype))
        return BrainOutput(self.command)


class JitteryExplicit(ExplicitBrain):
    """The explicit brain with a random wall-clock cost, to show fixed latency ignores wall time."""

    name = "jittery"

    def step(self, image, stamp):
        time.sleep(random.uniform(0.0, 0.002))
        return super().step(image, stamp)


def lateral_offsets(circuit, xy):
    tm = track_map_for(circuit)
    return np.array([tm.signed_distance(x, y) for x, y in xy])


def test_reset_places_car_at_start_with_offset(circuit):
    world = World(circuit, SimConfig())
    x, y, yaw = circuit.start_pose()
    assert (world.state.x, world.state.y, world.state.yaw) == pytest.approx((x, y, yaw))
    assert world.lateral_offset_m == pytest.approx(0.0, abs=2e-3)
    world.reset(lateral_offset_m=1.5, yaw_offset_rad=0.1)
    assert world.lateral_offset_m == pytest.approx(1.5, abs=2e-3)  # left of a ccw loop: +
    assert world.state.yaw == pytest.approx(yaw + 0.1)
    cw = World(load_circuit("simple_circuit", "cw"), SimConfig())
    cw.reset(lateral_offset_m=1.5)
    assert cw.lateral_offset_m == pytest.approx(-1.5, abs=2e-3)  # left of cw driving = right of ccw


def test_lockstep_fixed_latency_is_bit_for_bit_deterministic(circuit):
    logs = []
    for _ in range(2):
        world = World(circuit, SimConfig(latency_s=0.03, timeout_s=8.0))
        logs.append(run_episode(world, JitteryExplicit()))
    a, b = logs
    assert a.record.end_reason == b.record.end_reason == "timeout"
    assert a.record.frame_count == b.record.frame_count
    assert np.array_equal(a.record.t, b.record.t)
    assert np.array_equal(a.record.xy, b.record.xy)
    assert np.array_equal(a.commands, b.commands)
    assert np.array_equal(a.command_t, b.command_t)
    assert np.array_equal(a.yaw, b.yaw) and np.array_equal(a.speed, b.speed)
    assert a.record.xy[-1, 0] > 30.0  # it actually drove


def test_fixed_latency_delays_commands_exactly(circuit):
    brain = ConstantBrain(2.0, 0.0)
    log = run_episode(World(circuit, SimConfig(latency_s=0.25, timeout_s=1.0)), brain)
    t, xy = log.record.t, log.record.xy
    # Frame at t=0 -> command applied on the first physics step at t >= 0.25.
    assert log.command_t[0] == pytest.approx(0.25, abs=0.011)
    assert np.all(xy[t <= 0.25 + 1e-9] == xy[0])
    assert xy[-1, 0] > xy[0, 0]
    # One command per frame, each applied 0.25 s after its frame (frames at 30 Hz).
    stamps = np.array(brain.stamps)
    np.testing.assert_allclose(np.diff(stamps), 1 / 30, atol=0.011)
    n = len(log.command_t)
    np.testing.assert_allclose(log.command_t, stamps[:n] + 0.25, atol=0.011)


def test_steering_off_the_road_ends_off_track(circuit):
    for w, sign in ((1.0, 1.0), (-1.0, -1.0)):
        world = World(circuit, SimConfig(latency_s=0.03, timeout_s=30.0))
        log = run_episode(world, ConstantBrain(8.0, w))
        rec = log.record
        assert rec.end_reason == "off_track"
        assert rec.off_track_events == 1
        limit = circuit.half_width_m + world.config.off_track_margin_m
        d = lateral_offsets(circuit, rec.xy)
        assert sign * d[-1] > limit  # left the road on the side it steered to
        assert np.all(np.abs(d[:-1]) <= limit)  # and the run stopped at the first step off it
        assert rec.t[-1] < 5.0


def test_standing_still_times_out(circuit):
    brain = ConstantBrain(0.0, 0.0)
    log = run_episode(World(circuit, SimConfig(latency_s=0.03, timeout_s=1.0)), brain)
    rec = log.record
    assert rec.end_reason == "timeout"
    assert rec.off_track_events == 0
    assert rec.t[-1] == pytest.approx(1.0, abs=0.011)
    assert np.all(rec.xy == rec.xy[0])
    assert rec.frame_count in (30, 31)  # 30 Hz camera for 1 s
    assert len(brain.stamps) == rec.frame_count
    assert brain.resets == 1
    assert brain.shapes == {((480, 640, 3), np.dtype(np.uint8))}
    assert len(rec.iteration_wall_s) == len(rec.inference_s) == rec.frame_count


def test_large_latency_drives_worse(circuit):
    results = {}
    for latency in (0.03, 0.5):
        log = run_episode(World(circuit, SimConfig(latency_s=latency, timeout_s=20.0)), ExplicitBrain())
        d = lateral_offsets(circuit, log.record.xy)
        results[latency] = (log.record.end_reason, float(np.abs(d).max()), float(np.abs(d).mean()))
    reason_fast, max_fast, mean_fast = results[0.03]
    reason_slow, max_slow, mean_slow = results[0.5]
    assert reason_fast == "timeout" and max_fast < 0.5
    assert reason_slow == "off_track" or (max_slow > 3 * max_fast and mean_slow > 3 * mean_fast)


def test_measured_latency_default_runs(circuit):
    log = run_episode(World(circuit, SimConfig(timeout_s=1.0)), ExplicitBrain())
    rec = log.record
    assert rec.end_reason == "timeout"
    assert rec.frame_count in (30, 31)
    assert np.all(rec.iteration_wall_s > 0)


def test_realtime_clock(circuit):
    brain = ExplicitBrain()
    wall0 = time.perf_counter()
    log = run_episode(World(circuit, SimConfig(clock="realtime", timeout_s=2.0)), brain)
    wall = time.perf_counter() - wall0
    rec = log.record
    assert rec.end_reason == "timeout"
    assert rec.t[-1] == pytest.approx(2.0, abs=0.011)
    assert 1.9 <= rec.wall_time_s <= wall  # paced by the wall clock
    assert rec.frame_count in (60, 61)  # 30 Hz of simulated time
    assert 0 < len(rec.iteration_wall_s) <= rec.frame_count
    assert len(rec.inference_s) == len(rec.iteration_wall_s)
    assert np.all(rec.iteration_wall_s > 0)
    assert len(log.commands) == len(rec.iteration_wall_s)
    assert rec.xy[-1, 0] - rec.xy[0, 0] > 2.0  # the brain's commands moved the car
    assert np.abs(lateral_offsets(circuit, rec.xy)).max() < 1.0


def test_realtime_frame_hook_replaces_command(circuit):
    seen = []

    def hook(t, frame, state, cmd):
        seen.append(t)
        return Command(0.0, 0.0)

    log = run_episode(World(circuit, SimConfig(clock="realtime", timeout_s=0.5)), ConstantBrain(5.0, 0.0), hook)
    assert log.record.end_reason == "timeout"
    assert seen and np.all(log.commands == 0.0)
    assert np.all(log.record.xy == log.record.xy[0])


def test_frame_hook_replaces_command(circuit):
    calls = []

    def hook(t, frame, state, cmd):
        calls.append((t, frame.shape, state.x, cmd))
        return Command(3.0, 0.0)  # override the brain's hard left turn

    log = run_episode(World(circuit, SimConfig(latency_s=0.03, timeout_s=3.0)), ConstantBrain(8.0, 2.0), hook)
    rec = log.record
    assert rec.end_reason == "timeout"
    assert len(calls) == rec.frame_count
    assert all(c[3] == Command(8.0, 2.0) for c in calls)  # the hook sees the brain's command
    assert all(c[1] == (480, 640, 3) for c in calls)
    np.testing.assert_allclose([c[0] for c in calls], np.arange(len(calls)) / 30.0, atol=0.011)
    assert np.all(log.commands == [3.0, 0.0])  # ... and its own is applied
    assert np.all(np.abs(log.yaw - log.yaw[0]) < 1e-12)  # straight: no turning at all
    # 3 m/s after a 0.5 s ramp (6 m/s^2), starting 0.03 s late: 3*3 - 0.75 - 0.09 = 8.16 m.
    assert rec.xy[-1, 0] - rec.xy[0, 0] == pytest.approx(8.16, abs=0.05)


def test_bad_config_rejected():
    with pytest.raises(ValueError):
        SimConfig(clock="wallclock")
    with pytest.raises(ValueError):
        SimConfig(camera_rate_hz=0.0)
