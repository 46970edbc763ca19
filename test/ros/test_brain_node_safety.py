"""brain_node's safety behaviour over REAL DDS: the watchdog's stop within its timeout, one log per blind episode."""

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

import test_nodes
from rclpy.executors import SingleThreadedExecutor
from test_nodes import _Harness, camera_frame, params, spin_until

ctx = test_nodes.ctx  # the fixture: an rclpy context on a private domain, with the launcher's DDS settings

WATCHDOG_TIMEOUT_S = 0.5
TRIALS = 10


def _connected(ex, brain, harness):
    return spin_until(
        ex, lambda: harness.pub.get_subscription_count() > 0 and brain.cmd_pub.get_subscription_count() > 0, 10
    )


def test_watchdog_stop_is_published_within_the_timeout(ctx):
    """Image, then silence, TRIALS times: the zero Twist arrives after the last image within the timeout."""
    from pilotnet_brain.ros.brain_node import BrainNode, watchdog_period_s
    from pilotnet_brain.ros.image_conversion import image_to_msg

    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=WATCHDOG_TIMEOUT_S))
    h = _Harness(ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(brain)
    ex.add_node(h.node)
    msg = image_to_msg(camera_frame(), frame_id="cam")
    delays = []
    try:
        assert _connected(ex, brain, h)
        for trial in range(TRIALS):
            frames = brain.frames
            for _ in range(50):  # best effort: resend until the brain has the frame
                msg.header.stamp.sec = trial
                h.pub.publish(msg)
                last_image = time.monotonic()
                if spin_until(ex, lambda: brain.frames > frames, 0.05):
                    break
            assert brain.frames > frames, f"trial {trial}: the brain got no image"
            h.cmds.clear()
            assert spin_until(ex, lambda: any(c[1:] == (0.0, 0.0) for c in h.cmds), 3 * WATCHDOG_TIMEOUT_S)
            zero_at = next(c[0] for c in h.cmds if c[1:] == (0.0, 0.0))
            delays.append(zero_at - last_image)
    finally:
        ex.shutdown()
        brain.destroy_node()
        h.node.destroy_node()
    print(f"watchdog {WATCHDOG_TIMEOUT_S} s: zero Twist after the last image, s: {[round(d, 4) for d in delays]}")
    assert max(delays) <= WATCHDOG_TIMEOUT_S, delays
    # Never before the node's own lead (the period its one-shot timer waits after the image arrived).
    assert min(delays) >= watchdog_period_s(WATCHDOG_TIMEOUT_S), delays


def test_blindness_is_logged_once_per_episode_and_the_car_slows_to_a_stop(ctx, capfd):
    """Line, black frames (blind), line again, black again: two warnings, one 'sees again', speeds going to 0."""
    from pilotnet_brain.brains.explicit import ExplicitBrainParams
    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.image_conversion import image_to_msg, set_stamp

    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=0.0))
    h = _Harness(ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(brain)
    ex.add_node(h.node)
    line, black = camera_frame(), np.zeros((480, 640, 3), np.uint8)
    p = ExplicitBrainParams()
    dt = 1 / 30
    blind_frames = int(p.max_speed_mps / (p.blind_decel_mps2 * dt)) + 2  # long enough to stop from full speed
    episodes = [("line", 5), ("black", blind_frames), ("line", 5), ("black", 3)]
    speeds = {}
    try:
        assert _connected(ex, brain, h)
        n = 0
        for e, (picture, count) in enumerate(episodes):
            msg = image_to_msg(line if picture == "line" else black)
            for _ in range(count):
                set_stamp(msg.header.stamp, n * dt)
                n += 1
                for _ in range(50):  # best effort: resend until the brain has the frame
                    h.pub.publish(msg)
                    if spin_until(ex, lambda: brain.frames >= n and len(h.cmds) >= n, 0.05):
                        break
                assert brain.frames == n and len(h.cmds) == n, f"frame {n} not answered"
            speeds[e] = [c[1] for c in h.cmds[n - count : n]]
    finally:
        ex.shutdown()
        brain.destroy_node()
        h.node.destroy_node()
    err = capfd.readouterr().err
    assert err.count("explicit is blind: the line shows on 0 of 13 scan rows; slowing to a stop") == 2, err
    assert err.count(f"explicit sees again after {blind_frames} blind frame(s); driving") == 1, err
    assert all(v > 0 for v in speeds[0] + speeds[2])
    blind = speeds[1]
    assert all(b < a for a, b in zip(blind, blind[1:]) if a > 0) and blind[-1] == 0.0  # slows to a stop
