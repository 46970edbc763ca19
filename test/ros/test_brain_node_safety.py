"""brain_node's safety behaviour over REAL DDS: the watchdog's stop within its timeout, one log per blind episode."""

import time

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
