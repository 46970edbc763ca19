"""sim_node: the embedded simulator as a ROS 2 node on Gazebo's F1 topics (stands in for Gazebo).

Publishes the camera (sensor_msgs/Image rgb8, header.stamp = sim time, frame_id F1ROS/cameraL) with its
sensor_msgs/CameraInfo (/F1ROS/cameraL/camera_info: the 640x480 60 deg pinhole of sim/camera.py, no
distortion), nav_msgs/Odometry on /F1ROS/odom and the odom -> base_link transform on /tf after every
physics step (as a Gazebo car does; /tf only where tf2_msgs is installed, i.e. a ROS 2 install - the
PyPI packages lack it, and the node says so once at start-up), /clock, ~/stats (topics.SIM_STATS_FIELDS) and
/F1ROS/episode_status (running | lap_completed | off_track | timeout; transient local, so a late
subscriber still sees the end); subscribes /F1ROS/cmd_vel and /brain_node/stats.

Parameters: `config.SIM_NODE` (table in README.md): those of config/simulation.yaml (circuit, direction,
scale, clock, camera_rate, physics_dt, off_track_margin, timeout, latency, conditions, seed - see
sim/conditions.py) plus the node's own:
topic names, frame_id, command_timeout (lockstep: longest wall wait for a frame's command, then the last
command is kept), wait_for_brain / wait_for_metrics / startup_timeout (start only once the brain is
subscribed to the camera and publishes commands, and `odom_subscribers` nodes - metrics_node, bag_recorder -
listen), exit_on_end + linger
(exit code 0 a little after the episode ends, so a launcher sees the end).

Clocks: the episode runs by `sim.clock.EpisodeClock`'s rules, the same as `drive`/`record`; the brain is
reached over DDS through `DdsBrainLink`:
- realtime: physics paced by the wall clock, camera at camera_rate, the newest command applies at the next
  physics step (as in Gazebo: a slow brain drives on stale frames).
- lockstep over DDS: publish a frame, wait (at most command_timeout wall seconds) for the brain's answer
  to THAT frame - its ~/stats message carries the frame stamp, and the command is the cmd_vel received
  with it - then apply the command `latency` simulated seconds after the frame (the measured
  camera->command wall latency when latency < 0), and advance to the next frame. Deterministic up to
  that latency (bit-exact with a fixed latency). The camera is best effort: a frame unanswered after
  RESEND_AFTER_S is published again (same frame, same stamp). No answer within command_timeout: counted
  in lockstep_timeouts, and the last command stays in force.
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
from geometry_msgs.msg import TransformStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64MultiArray, String

from pilotnet_brain import interfaces as topics
from pilotnet_brain.config import SIM_NODE
from pilotnet_brain.control import STOP, Command
from pilotnet_brain.ros.declare import declare_node_parameters
from pilotnet_brain.ros.image_conversion import CameraFrameSerializer, set_stamp
from pilotnet_brain.ros.messages import stats_layout
from pilotnet_brain.ros.node_runtime import run_node
from pilotnet_brain.ros.qos import LATCHED, RELIABLE, RELIABLE_CAMERA, SENSOR_DATA, TF
from pilotnet_brain.sim.camera import CameraModel
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.clock import EpisodeClock, Reply
from pilotnet_brain.sim.settings import sim_config_from_parameters
from pilotnet_brain.sim.world import World, default_timeout_s

try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # part of a ROS 2 install, not on PyPI: then no /tf
    TFMessage = None

NODE_NAME = SIM_NODE.node
#: Lock-step: a frame unanswered this long (wall seconds) is published again, until command_timeout.
RESEND_AFTER_S = 0.25


def sim_node_defaults() -> dict:
    """All sim_node parameters with their defaults (the schema config.SIM_NODE)."""
    return SIM_NODE.defaults()


def _yaw_quaternion(yaw: float, q) -> None:
    q.x = q.y = 0.0
    q.z, q.w = math.sin(yaw / 2), math.cos(yaw / 2)


def camera_info_msg(camera: CameraModel, frame_id: str) -> CameraInfo:
    """The CameraInfo of the simulator's pinhole camera (what Gazebo's camera sensor publishes): K and P
    from its intrinsics, 'plumb_bob' with zero distortion, identity rectification."""
    k = [float(v) for v in camera.intrinsics.ravel()]
    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.width, msg.height = camera.width, camera.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = k
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = k[0:3] + [0.0] + k[3:6] + [0.0] + k[6:9] + [0.0]  # monocular: P = [K | 0]
    return msg


def odom_transform(x: float, y: float, yaw: float, stamp_s: float) -> TransformStamped:
    """odom -> base_link for the car at (x, y, yaw) on the ground plane, stamped with the sim time."""
    msg = TransformStamped()
    set_stamp(msg.header.stamp, stamp_s)
    msg.header.frame_id = topics.ODOM_FRAME_ID
    msg.child_frame_id = topics.BASE_FRAME_ID
    msg.transform.translation.x, msg.transform.translation.y = float(x), float(y)
    msg.transform.translation.z = 0.0
    _yaw_quaternion(float(yaw), msg.transform.rotation)
    return msg


class DdsBrainLink:
    """`sim.clock.BrainLink` over DDS for a SimNode: frames go out on the camera topic, commands come back
    on cmd_vel (the node's subscription callbacks fill node._cmd / _cmd_seq / _answered_stamp)."""

    def __init__(self, node):
        self.node = node
        self._seen = 0  # node._cmd_seq of the newest command handed to the clock (0: none yet, STOP)

    def ask(self, frame, t, state):
        """Lock-step: publish the frame, wait (command_timeout) for the command answering THAT frame."""
        node, p = self.node, self.node.params
        wait_s = float(p["command_timeout"])
        # A brain that publishes stats stamps its answer with the frame's stamp: match on it.
        use_stats = node.count_publishers(p["brain_stats_topic"]) > 0
        with node._cond:
            seq0 = node._cmd_seq
        node.wait_until_frames_received(t, wait_s)  # the frames before this one
        sent = time.perf_counter()
        node._publish_frame(frame, t)

        def answered():
            if node._stop.is_set():
                return True
            if node._cmd_seq <= seq0:
                return False
            return not use_stats or (node._answered_stamp is not None and abs(node._answered_stamp - t) < 1e-6)

        deadline = sent + wait_s
        while True:
            with node._cond:
                ok = node._cond.wait_for(
                    answered, timeout=min(RESEND_AFTER_S, max(0.0, deadline - time.perf_counter()))
                )
                cmd, got_at = node._cmd, node._cmd_wall
            if ok or time.perf_counter() >= deadline:
                break
            # The brain's camera subscription is best effort: a frame can be lost (seen: the first one,
            # while the endpoints finish matching). The same frame again; the latency counts from it.
            sent = time.perf_counter()
            node._publish_frame(frame, t)
            node.frames_resent += 1
        if node._stop.is_set():
            return None
        if not ok:
            node.lockstep_timeouts += 1
            node.get_logger().warning(
                f"no command for frame t={t:.2f} s within {wait_s} s; keeping the last one",
                throttle_duration_sec=5.0,
            )
            return None
        latency = got_at - sent
        node.latencies.append(latency)
        return Reply(cmd, latency)

    # --- real-time: frames go out, the newest cmd_vel applies (latency is measured from ~/stats) -------
    def start(self):
        pass

    def post(self, frame, t, state):
        self.node._publish_frame(frame, t)

    def poll(self):
        node = self.node
        with node._cond:
            if node._cmd_seq == self._seen:
                return []
            self._seen = node._cmd_seq
            return [Reply(node._cmd)]

    def stop(self):
        pass


class SimNode(Node):
    def __init__(self, **node_kwargs):
        created = time.monotonic()  # the node brings up this process's DDS participant
        super().__init__(NODE_NAME, **node_kwargs)
        self._created = created
        p = self.params = declare_node_parameters(self, SIM_NODE)
        self.config = sim_config_from_parameters(p, f"node {NODE_NAME}")
        self.circuit = load_circuit(p["circuit"], direction=p["direction"], scale=float(p["scale"]))
        self.world = World(self.circuit, self.config)
        self.timeout_s = self.config.timeout_s or default_timeout_s(self.circuit)

        # camera_reliable (set when recording): a reliable subscriber - bag_recorder - gets every frame
        self.camera_reliable = bool(p["camera_reliable"])
        self.image_pub = self.create_publisher(
            Image, p["camera_topic"], RELIABLE_CAMERA if self.camera_reliable else SENSOR_DATA
        )
        self.camera_info_pub = self.create_publisher(CameraInfo, p["camera_info_topic"], SENSOR_DATA)
        self.tf_pub = self.create_publisher(TFMessage, topics.TF_TOPIC, TF) if TFMessage is not None else None
        self.odom_pub = self.create_publisher(Odometry, p["odom_topic"], RELIABLE)
        self.clock_pub = self.create_publisher(Clock, topics.CLOCK_TOPIC, RELIABLE)  # one per step, as odometry
        self.status_pub = self.create_publisher(String, p["status_topic"], LATCHED)
        self.stats_pub = self.create_publisher(Float64MultiArray, topics.SIM_STATS_TOPIC, LATCHED)
        self.create_subscription(Twist, p["cmd_vel_topic"], self._on_cmd, 10)
        self.create_subscription(Float64MultiArray, p["brain_stats_topic"], self._on_brain_stats, RELIABLE)

        self._cond = threading.Condition()
        self._cmd = STOP
        self._cmd_seq = 0
        self._cmd_wall = 0.0
        self._answered_stamp = None  # frame stamp of the newest brain stats
        self._published = {}  # frame stamp -> wall time published (realtime latency)
        self.latencies = []  # camera -> command, wall s
        self.lockstep_timeouts = 0
        self.frames_resent = 0  # lock-step: frames published again because no answer came (see DdsBrainLink)
        self.frame_count = 0
        self.odom_count = 0  # odometry (and /clock) messages published
        self.stats_count = 0  # ~/stats messages published
        self.frame_ack_timeouts = 0  # camera_reliable: frames a reliable subscriber did not acknowledge in time
        self.end_reason = None
        self.finished = threading.Event()  # set when the node may exit (after linger)
        self._stop = threading.Event()
        self._camera_frames = CameraFrameSerializer(p["frame_id"])  # published serialized: see image_conversion
        self._odom = Odometry()
        self._odom.header.frame_id = topics.ODOM_FRAME_ID
        self._odom.child_frame_id = topics.BASE_FRAME_ID
        self._camera_info = camera_info_msg(self.world.renderer.camera, p["frame_id"])
        self._clock = Clock()
        self._stats = Float64MultiArray(layout=stats_layout(topics.SIM_STATS_FIELDS))
        self._thread = None
        self._publish_status(topics.WAITING)
        self.get_logger().info(
            f"{self.circuit.name} {self.circuit.direction} ({self.circuit.length_m:.0f} m), clock "
            f"{self.config.clock}, camera {self.config.camera_rate_hz:g} Hz, time-out {self.timeout_s:g} s, "
            f"conditions {self.config.conditions.label} (seed {self.config.seed})"
        )
        if self.tf_pub is None:
            self.get_logger().info(
                f"not publishing {topics.TF_TOPIC} ({topics.ODOM_FRAME_ID} -> {topics.BASE_FRAME_ID}): "
                "tf2_msgs is missing (it comes with a ROS 2 install, not from PyPI)"
            )

    # --- callbacks (executor thread) -------------------------------------------------------
    def _on_cmd(self, msg):
        with self._cond:
            self._cmd = Command(float(msg.linear.x), float(msg.angular.z))
            self._cmd_seq += 1
            self._cmd_wall = time.perf_counter()
            self._cond.notify_all()

    def _on_brain_stats(self, msg):
        if not msg.data:
            return
        now = time.perf_counter()
        with self._cond:
            self._answered_stamp = float(msg.data[0])
            sent = self._published.pop(round(self._answered_stamp, 6), None)
            if sent is not None and self.config.clock == "realtime":
                self.latencies.append(now - sent)
            self._cond.notify_all()

    # --- publishing (simulation thread) ---------------------------------------------------
    def wait_until_frames_received(self, t: float, timeout_s: float) -> None:
        """camera_reliable, lock-step, before the frame at `t` goes out: wait until every reliable camera
        subscriber (bag_recorder) has acknowledged the frames already sent, so none leaves the publisher's
        queue unreceived and a bag misses none. The previous frame went out a brain answer ago, so this
        rarely waits. After one time-out (a subscriber gone) it stops waiting, and says so."""
        if not self.camera_reliable or self.frame_ack_timeouts:
            return
        if not self.image_pub.wait_for_all_acked(Duration(seconds=timeout_s)):
            self.frame_ack_timeouts += 1
            self.get_logger().warning(
                f"frames before t={t:.2f} s not acknowledged by every reliable subscriber of "
                f"{self.image_pub.topic_name} within {timeout_s} s; no longer waiting for them"
            )

    def _publish_status(self, state: str):
        self.status_pub.publish(String(data=state))

    def _publish_frame(self, frame, t):
        serialized = self._camera_frames.serialize(frame, t)
        with self._cond:
            self._published[round(t, 6)] = time.perf_counter()
            if len(self._published) > 100:
                self._published.pop(next(iter(self._published)))
        self.image_pub.publish(serialized)
        set_stamp(self._camera_info.header.stamp, t)
        self.camera_info_pub.publish(self._camera_info)
        self.frame_count += 1

    def _publish_odom_and_clock(self):
        s, t = self.world.state, self.world.sim_time_s
        o = self._odom
        set_stamp(o.header.stamp, t)
        o.pose.pose.position.x, o.pose.pose.position.y = float(s.x), float(s.y)
        _yaw_quaternion(float(s.yaw), o.pose.pose.orientation)
        o.twist.twist.linear.x, o.twist.twist.angular.z = float(s.v), float(s.w)
        self.odom_pub.publish(o)
        self.odom_count += 1
        if self.tf_pub is not None:
            self.tf_pub.publish(TFMessage(transforms=[odom_transform(s.x, s.y, s.yaw, t)]))
        set_stamp(self._clock.clock, t)
        self.clock_pub.publish(self._clock)

    def _publish_stats(self, wall0):
        lat = np.asarray(self.latencies) * 1e3
        p50, p99 = np.percentile(lat, [50, 99]) if len(lat) else (0.0, 0.0)
        self._stats.data = [
            float(self.world.sim_time_s),
            float(self.frame_count),
            time.perf_counter() - wall0,
            float(self.world.off_track_events),
            float(lat.mean()) if len(lat) else 0.0,
            float(lat.max()) if len(lat) else 0.0,
            float(self.lockstep_timeouts),
            float(p50),
            float(p99),
        ]
        self.stats_pub.publish(self._stats)
        self.stats_count += 1

    # --- start-up -------------------------------------------------------------------------------
    def wait_for_graph(self) -> bool:
        p = self.params
        deadline = time.monotonic() + float(p["startup_timeout"])
        while not self._stop.is_set() and time.monotonic() < deadline:
            missing = []
            if p["wait_for_brain"]:
                if self.count_subscribers(p["camera_topic"]) < 1:
                    missing.append(f"a subscriber on {p['camera_topic']}")
                if self.count_publishers(p["cmd_vel_topic"]) < 1:
                    missing.append(f"a publisher on {p['cmd_vel_topic']}")
            n = max(1, int(p["odom_subscribers"]))
            if p["wait_for_metrics"] and (
                self.count_subscribers(p["odom_topic"]) < n or self.count_subscribers(p["status_topic"]) < n
            ):
                missing.append(f"{n} subscriber(s) on {p['odom_topic']} and {p['status_topic']}")
            if not missing:
                # graph-benchmark reads this line (bench/graph.py GRAPH_MATCHED)
                matched = time.monotonic() - self._created
                self.get_logger().info(f"start-up: graph matched {matched:.3f} s after the node was created")
                time.sleep(0.5)  # discovery seen; let the endpoints finish matching
                return True
            time.sleep(0.05)
        self.get_logger().error(f"start-up: still waiting for {', '.join(missing)} after {p['startup_timeout']} s")
        return False

    # --- the episode ----------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="sim", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self):
        try:
            if not self.wait_for_graph():
                self.end_reason = "startup_failed"
                return
            self.world.reset()
            self._publish_status(topics.RUNNING)
            self._publish_odom_and_clock()
            reason = self._run_episode()
            if reason is None:
                return  # stopped from outside
            self.end_reason = reason
            self._publish_stats(self._episode.wall0)
            self._publish_status(reason)
            lat = np.asarray(self.latencies) * 1e3
            self.get_logger().info(
                f"episode ended: {reason} at t={self.world.sim_time_s:.2f} s, progress "
                f"{self.world.progress_m:.0f}/{self.circuit.length_m:.0f} m, {self.frame_count} frames, "
                f"camera->command latency mean {lat.mean() if len(lat) else float('nan'):.2f} ms "
                f"(median {np.median(lat) if len(lat) else float('nan'):.2f} ms), "
                f"{self.lockstep_timeouts} command time-outs, {self.frames_resent} frame(s) re-sent; "
                f"published {self.frame_count} frames, "
                f"{self.odom_count} odometry, {self.odom_count} clock and {self.stats_count} stats messages"
            )
            if self.params["exit_on_end"]:
                self._stop.wait(float(self.params["linger"]))
        except Exception as error:  # report, do not hang the launcher
            self.get_logger().error(f"simulation failed: {error!r}")
            self.end_reason = "error"
        finally:
            self.finished.set()

    def _run_episode(self):
        """The episode by sim.clock's rules (lock-step or real-time), the brain reached over DDS."""
        clock = self._episode = EpisodeClock(self.config, self.timeout_s, stop=self._stop)

        def on_step(reason):
            self._publish_odom_and_clock()
            if not reason and self.world.sim_time_s % 1.0 < self.config.physics_dt_s - 1e-9:
                self._publish_stats(clock.wall0)

        return clock.run(self.world, DdsBrainLink(self), on_step=on_step)


def main(args=None) -> int:
    return run_node(
        NODE_NAME,
        SimNode,
        done=lambda node: node.finished.is_set(),
        on_start=lambda node: node.start(),
        on_stop=lambda node: node.stop(),
        exit_code=lambda node: 3 if node.end_reason in ("startup_failed", "error") else 0,
        args=args,
    )


if __name__ == "__main__":
    sys.exit(main())
