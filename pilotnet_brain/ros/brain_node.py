"""brain_node: camera image in, geometry_msgs/Twist out, with any brain of the package.

Subscribes the camera (best effort, depth 1: only the newest frame), runs the configured brain on every
frame it gets, publishes the command on /F1ROS/cmd_vel and per-iteration timings on ~/stats
(std_msgs/Float64MultiArray, layout topics.BRAIN_STATS_FIELDS). With `use_sim_time` (Gazebo's or
sim_node's /clock) the watchdog runs on simulated time; the timings are always wall-clock compute times.

Parameters: `config.BRAIN_NODE` (brain, backend, model_path, device, threads, topic names, max_v, max_w,
watchdog_timeout; table in README.md), set by config/brains/*.yaml. Unknown names and bad values: one
line, exit code 2.

Robustness: a bad image (mono8, wrong size, empty, unknown encoding, step mismatch) is skipped and logged
once per burst (then at most every 5 s while the burst lasts); a NaN/inf command becomes a stop with an
error log. The node never dies on a frame. A brain that cannot see its cue (BrainOutput.blind) slows to a
stop: one warning when the blind episode starts, one info when it sees again. The watchdog (a one-shot
timer on the node's clock, re-armed by every good image) publishes a zero command within
`watchdog_timeout` of the last good image.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray

from pilotnet_brain import interfaces as topics
from pilotnet_brain.brains.from_parameters import build_brain
from pilotnet_brain.config import BRAIN_NODE
from pilotnet_brain.control import STOP, clamp_command
from pilotnet_brain.model.preprocessing import preprocess
from pilotnet_brain.ros.declare import declare_node_parameters
from pilotnet_brain.ros.image_conversion import ImageConversionError, image_to_msg, msg_to_rgb, stamp_to_s
from pilotnet_brain.ros.messages import stats_layout
from pilotnet_brain.ros.node_runtime import run_node
from pilotnet_brain.ros.params import brain_label
from pilotnet_brain.ros.qos import NEWEST_FRAME, RELIABLE
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.world import World

NODE_NAME = BRAIN_NODE.node
BAD_IMAGE_LOG_PERIOD_S = 5.0
#: The watchdog's one-shot timer fires this much before the deadline (at most a tenth of the timeout) so
#: that the executor's wake-up, the publish and the DDS delivery of the stop (1-5 ms on an idle machine,
#: up to 40 ms seen with two cores overloaded five times over) still fit within watchdog_timeout of the last image.
WATCHDOG_DELIVERY_BUDGET_S = 0.05


def watchdog_period_s(timeout_s: float) -> float:
    """Delay of the watchdog's stop after the last good image: just under `timeout_s`."""
    return timeout_s - min(WATCHDOG_DELIVERY_BUDGET_S, timeout_s / 10)


class BrainNode(Node):
    def __init__(self, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        p = self.params = declare_node_parameters(self, BRAIN_NODE)
        self.max_v, self.max_w = float(p["max_v"]), float(p["max_w"])
        self.brain = build_brain(p, self.get_logger())
        self.brain.reset()
        self.label = brain_label(p)
        # The brain's own bookkeeping that can wait until the command is out (PilotNetBrain.update_camera_yaw).
        self._after_command = getattr(self.brain, "update_camera_yaw", None)
        if self._after_command is not None:
            self.brain.defer_camera_yaw = True

        self._twist = Twist()
        self._stats = Float64MultiArray(layout=stats_layout(topics.BRAIN_STATS_FIELDS))
        self.cmd_pub = self.create_publisher(Twist, p["cmd_vel_topic"], 10)
        self.stats_pub = self.create_publisher(Float64MultiArray, p["stats_topic"], RELIABLE)
        # The subscription is created last: a subscriber on the camera topic means "brain ready".
        # Depth 1: the brain always works on the newest frame, never on a queue of stale ones.
        self.image_sub = self.create_subscription(Image, p["camera_topic"], self.on_image, NEWEST_FRAME)
        self.watchdog_timeout = float(p["watchdog_timeout"])
        self._stale = False
        self._prev_t0 = None
        self._bad_count = 0  # bad images in the current burst
        self._bad_logged_at = None
        self._blind_frames = 0  # frames in the current blind episode (the brain cannot see its cue)
        self.frames = 0
        self.bad_images = 0  # total skipped
        self.timings = []  # (inference_s, iteration_s, overhead_s), for benchmarks/tests
        self.record_timings = False
        self._watchdog_timer = None
        if self.watchdog_timeout > 0:
            # One shot on the node's clock (sim time with use_sim_time), re-armed by every good image: the
            # stop goes out at the deadline, not a polling period after it.
            self._watchdog_timer = self.create_timer(
                watchdog_period_s(self.watchdog_timeout), self._watchdog, clock=self.get_clock()
            )
            self._watchdog_timer.cancel()  # armed by the first image: before it this node never commanded the car
        clock = "sim time (/clock)" if self.get_parameter("use_sim_time").value else "wall clock"
        self.get_logger().info(
            f"brain {self.label} ready: {self.image_sub.topic_name} -> {self.cmd_pub.topic_name} "
            f"(max_v {self.max_v}, max_w {self.max_w}, watchdog {self.watchdog_timeout} s on the {clock})"
        )

    # --- image -> command -------------------------------------------------------------------
    def on_image(self, msg):
        t0 = time.perf_counter()
        try:
            frame = msg_to_rgb(msg)
        except ImageConversionError as error:
            self._bad_image(error)
            return
        if self._bad_count:
            self.get_logger().info(f"good image again after {self._bad_count} bad image(s) skipped")
            self._bad_count = 0
        self._arm_watchdog()  # counts from the frame's arrival, not from the end of the brain's step
        stamp = stamp_to_s(msg.header.stamp)
        ts = time.perf_counter()
        try:
            out = self.brain.step(frame, stamp)
        except Exception as error:  # a brain bug must not kill the node: stop the car, say why
            self.get_logger().error(
                f"brain step failed on frame {stamp:.3f}: {error!r}; commanding stop", throttle_duration_sec=5.0
            )
            out = None
        step_s = time.perf_counter() - ts
        cmd = out.command if out is not None else STOP
        err = getattr(self.brain, "last_error", None)
        if err:
            self.get_logger().error(f"{self.label}: {err}", throttle_duration_sec=1.0)
            self.brain.last_error = None
        if not (math.isfinite(cmd.v) and math.isfinite(cmd.w)):
            self.get_logger().error(
                f"non-finite command v={cmd.v} w={cmd.w}; commanding stop", throttle_duration_sec=1.0
            )
        cmd = clamp_command(cmd, self.max_v, self.max_w)
        tw = self._twist
        tw.linear.x, tw.angular.z = float(cmd.v), float(cmd.w)
        self.cmd_pub.publish(tw)
        t1 = time.perf_counter()
        if self._stale:
            self.get_logger().info("images resumed; driving again")
            self._stale = False
        if out is not None:
            self._report_blindness(out.blind)
        inference = out.inference_s if (out is not None and out.inference_s is not None) else step_s
        iteration = t1 - t0
        period = 0.0 if self._prev_t0 is None else t0 - self._prev_t0
        self._prev_t0 = t0
        self._stats.data = [stamp, inference * 1e3, iteration * 1e3, period * 1e3, (iteration - inference) * 1e3]
        self.stats_pub.publish(self._stats)
        self.frames += 1
        if self._after_command is not None and out is not None:
            self._after_command(frame)
        notice = getattr(self.brain, "last_notice", None)
        if notice:
            self.get_logger().info(f"{self.label}: {notice}")
            self.brain.last_notice = None
        if self.record_timings:
            self.timings.append((inference, iteration, iteration - inference))

    def _report_blindness(self, blind: str):
        """A warning when the brain goes blind and an info when it sees again: once per episode, not per frame."""
        if blind and not self._blind_frames:
            self.get_logger().warning(f"{self.label} is blind: {blind}; slowing to a stop")
        elif not blind and self._blind_frames:
            self.get_logger().info(f"{self.label} sees again after {self._blind_frames} blind frame(s); driving")
        self._blind_frames = self._blind_frames + 1 if blind else 0

    def _bad_image(self, error):
        now = time.monotonic()
        self.bad_images += 1
        self._bad_count += 1
        if self._bad_count == 1 or now - self._bad_logged_at >= BAD_IMAGE_LOG_PERIOD_S:
            more = "" if self._bad_count == 1 else f" ({self._bad_count} bad images in this burst)"
            self.get_logger().error(f"skipping bad image: {error}{more}")
            self._bad_logged_at = now

    # --- watchdog ---------------------------------------------------------------------------
    def _arm_watchdog(self):
        if self._watchdog_timer is not None:
            self._watchdog_timer.reset()  # also restarts it after it fired (reset re-enables a cancelled timer)

    def _watchdog(self):
        self._watchdog_timer.cancel()  # one shot: the next good image re-arms it
        if self._stale:
            return
        self._stale = True
        self._twist.linear.x = self._twist.angular.z = 0.0
        self.cmd_pub.publish(self._twist)  # first: the log line must not delay the stop
        self.get_logger().warning(
            f"watchdog: no fresh image within {self.watchdog_timeout:g} s on {self.image_sub.topic_name}; "
            "published zero velocity"
        )


def spin_node(make_node, name: str, args=None) -> int:
    """rclpy.init, build, spin until Ctrl-C / shutdown; a start-up error is logged, exit code 2."""
    return run_node(name, make_node, args=args)


def benchmark_overhead(brain: str = "explicit", frames: int = 300, circuit: str = "simple_circuit", **params) -> dict:
    """Per-frame cost of the node around the brain, on a real node with real publishers.

    Feeds the same 640x480 rgb8 message (a rendered frame) to the node's image callback `frames` times
    and reports medians in ms: decode (msg -> array), iteration (callback in -> command + stats out),
    inference (as the brain reports it) and overhead = iteration - inference (decode + preprocessing
    outside the forward pass + clamp + publish); for pilotnet also preprocess_ms (the package's one
    preprocessing function alone) and node_overhead_ms = overhead - preprocess (what this node adds).
    """

    world = World(load_circuit(circuit))
    msg = image_to_msg(world.render(), stamp_s=0.0, frame_id=topics.CAMERA_FRAME_ID)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        overrides = [Parameter("brain", value=brain), Parameter("watchdog_timeout", value=0.0)]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        node = BrainNode(context=ctx, parameter_overrides=overrides)
        node.record_timings = True
        for i in range(min(20, frames)):  # warm-up
            node.on_image(msg)
        node.timings.clear()
        decode = []
        for i in range(frames):
            msg.header.stamp.sec = i
            t0 = time.perf_counter()
            msg_to_rgb(msg)
            decode.append(time.perf_counter() - t0)
            node.on_image(msg)
        arr = np.asarray(node.timings) * 1e3
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    med = np.median(arr, axis=0)
    preprocess_ms = 0.0
    if brain == "pilotnet":  # PilotNet's preprocessing (preprocessing.preprocess) runs outside the forward pass
        frame = msg_to_rgb(msg)
        ts = []
        for _ in range(frames):
            t0 = time.perf_counter()
            preprocess(frame)
            ts.append(time.perf_counter() - t0)
        preprocess_ms = float(np.median(ts) * 1e3)
    return {
        "brain": brain,
        "frames": frames,
        "decode_ms": float(np.median(decode) * 1e3),
        "preprocess_ms": preprocess_ms,
        "node_overhead_ms": float(med[2]) - preprocess_ms,
        "inference_ms": float(med[0]),
        "iteration_ms": float(med[1]),
        "overhead_ms": float(med[2]),
        "overhead_p95_ms": float(np.percentile(arr[:, 2], 95)),
        "iteration_frequency_hz": float(1e3 / arr[:, 1].mean()),
    }


def main(args=None) -> int:
    return spin_node(BrainNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
