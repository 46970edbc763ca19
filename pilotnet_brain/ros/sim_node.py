"""sim_node: the embedded simulator as a ROS 2 node on Gazebo's F1 topics (stands in for Gazebo).

Publishes the camera (sensor_msgs/Image rgb8, header.stamp = sim time, frame_id F1ROS/cameraL),
nav_msgs/Odometry on /F1ROS/odom after every physics step, /clock, ~/stats (topics.SIM_STATS_FIELDS) and
/F1ROS/episode_status (running | lap_completed | off_track | timeout; transient local, so a late
subscriber still sees the end); subscribes /F1ROS/cmd_vel and /brain_node/stats.

Parameters: those of config/simulation.yaml (`sim_config.SIM_PARAMETERS`: circuit, direction, scale,
clock, camera_rate, physics_dt, off_track_margin, timeout, latency) plus the node's own:
topic names, frame_id, command_timeout (lockstep: longest wall wait for a frame's command, then the last
command is kept), wait_for_brain / wait_for_metrics / startup_timeout (start only once the brain is
subscribed to the camera and publishes commands, and `odom_subscribers` nodes - metrics_node, bag_recorder -
listen), exit_on_end + linger
(exit code 0 a little after the episode ends, so a launcher sees the end).

Clocks:
- realtime: physics paced by the wall clock, camera at camera_rate, the newest command applies at once
  (as in Gazebo: a slow brain drives on stale frames).
- lockstep over DDS: publish a frame, wait (at most command_timeout wall seconds) for the brain's answer
  to THAT frame - its ~/stats message carries the frame stamp, and the command is the cmd_vel received
  with it - then apply the command `latency` simulated seconds after the frame (the measured
  camera->command wall latency when latency < 0), and advance to the next frame. Deterministic up to
  that latency (bit-exact with a fixed latency).
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np

from pilotnet_brain import interfaces as topics
from pilotnet_brain.ros.image_conversion import image_to_msg, set_stamp
from pilotnet_brain.ros.messages import stats_layout
from pilotnet_brain.ros.node_runtime import lazy_node_class, run_node
from pilotnet_brain.sim.settings import SIM_PARAMETERS, load_sim_parameters, sim_config_from_parameters

NODE_NAME = "sim_node"
NODE_EXTRA_PARAMETERS = {
    "camera_topic": topics.CAMERA_TOPIC,
    "cmd_vel_topic": topics.CMD_VEL_TOPIC,
    "odom_topic": topics.ODOM_TOPIC,
    "status_topic": topics.EPISODE_STATUS_TOPIC,
    "brain_stats_topic": topics.BRAIN_STATS_TOPIC_RESOLVED,
    "frame_id": topics.CAMERA_FRAME_ID,
    "command_timeout": 2.0,
    "wait_for_brain": True,
    "wait_for_metrics": False,
    "odom_subscribers": 1,  # with wait_for_metrics: how many odometry subscribers (2 = metrics + bag_recorder)
    "startup_timeout": 60.0,
    "exit_on_end": True,
    "linger": 1.0,
}


def sim_node_defaults() -> dict:
    """All sim_node parameters with their defaults (simulation.yaml's values for the simulator ones)."""
    defaults = {
        "circuit": "simple_circuit",
        "direction": "ccw",
        "scale": 1.0,
        "clock": "lockstep",
        "camera_rate": 30.0,
        "physics_dt": 0.01,
        "off_track_margin": 1.0,
        "timeout": 0.0,
        "latency": -1.0,
    }
    try:
        defaults.update(load_sim_parameters())
    except Exception:  # no share dir: keep the built-in defaults
        pass
    for name, kind in SIM_PARAMETERS.items():
        defaults[name] = kind(defaults[name])
    defaults.update(NODE_EXTRA_PARAMETERS)
    return defaults


def _yaw_quaternion(yaw: float, q) -> None:
    q.x = q.y = 0.0
    q.z, q.w = math.sin(yaw / 2), math.cos(yaw / 2)


def _make_node_class():
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float64MultiArray, String

    from pilotnet_brain.control import STOP, Command
    from pilotnet_brain.sim.circuits import load_circuit
    from pilotnet_brain.sim.world import World, _end_reason, default_timeout_s

    reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        history=HistoryPolicy.KEEP_LAST,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )

    class SimNode(Node):
        def __init__(self, **node_kwargs):
            super().__init__(NODE_NAME, **node_kwargs)
            from pilotnet_brain.ros.params import check_node_overrides

            defaults = sim_node_defaults()
            for name, default in defaults.items():
                self.declare_parameter(name, default)
            check_node_overrides(self, defaults)
            p = self.params = {name: self.get_parameter(name).value for name in defaults}
            self.config = sim_config_from_parameters({k: p[k] for k in SIM_PARAMETERS})
            self.circuit = load_circuit(p["circuit"], direction=p["direction"], scale=float(p["scale"]))
            self.world = World(self.circuit, self.config)
            self.timeout_s = self.config.timeout_s or default_timeout_s(self.circuit)

            self.image_pub = self.create_publisher(Image, p["camera_topic"], qos_profile_sensor_data)
            self.odom_pub = self.create_publisher(Odometry, p["odom_topic"], reliable)
            self.clock_pub = self.create_publisher(Clock, topics.CLOCK_TOPIC, 10)
            self.status_pub = self.create_publisher(String, p["status_topic"], latched)
            self.stats_pub = self.create_publisher(Float64MultiArray, topics.SIM_STATS_TOPIC, latched)
            self.create_subscription(Twist, p["cmd_vel_topic"], self._on_cmd, 10)
            self.create_subscription(Float64MultiArray, p["brain_stats_topic"], self._on_brain_stats, reliable)

            self._cond = threading.Condition()
            self._cmd = STOP
            self._cmd_seq = 0
            self._cmd_wall = 0.0
            self._answered_stamp = None  # frame stamp of the newest brain stats
            self._published = {}  # frame stamp -> wall time published (realtime latency)
            self._Command, self._STOP, self._end_reason = Command, STOP, _end_reason
            self.latencies = []  # camera -> command, wall s
            self.lockstep_timeouts = 0
            self.frame_count = 0
            self.end_reason = None
            self.finished = threading.Event()  # set when the node may exit (after linger)
            self._stop = threading.Event()
            self._image = Image()
            self._odom = Odometry()
            self._odom.header.frame_id = topics.ODOM_FRAME_ID
            self._odom.child_frame_id = topics.BASE_FRAME_ID
            self._clock = Clock()
            self._stats = Float64MultiArray(layout=stats_layout(topics.SIM_STATS_FIELDS))
            self._thread = None
            self._publish_status(topics.WAITING)
            self.get_logger().info(
                f"{self.circuit.name} {self.circuit.direction} ({self.circuit.length_m:.0f} m), clock "
                f"{self.config.clock}, camera {self.config.camera_rate_hz:g} Hz, time-out {self.timeout_s:g} s"
            )

        # --- callbacks (executor thread) -------------------------------------------------------
        def _on_cmd(self, msg):
            with self._cond:
                self._cmd = self._Command(float(msg.linear.x), float(msg.angular.z))
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
        def _publish_status(self, state: str):
            self.status_pub.publish(String(data=state))

        def _publish_frame(self, frame, t):
            image_to_msg(frame, stamp_s=t, frame_id=self.params["frame_id"], msg=self._image)
            with self._cond:
                self._published[round(t, 6)] = time.perf_counter()
                if len(self._published) > 100:
                    self._published.pop(next(iter(self._published)))
            self.image_pub.publish(self._image)
            self.frame_count += 1

        def _publish_odom_and_clock(self):
            s, t = self.world.state, self.world.sim_time_s
            o = self._odom
            set_stamp(o.header.stamp, t)
            o.pose.pose.position.x, o.pose.pose.position.y = float(s.x), float(s.y)
            _yaw_quaternion(float(s.yaw), o.pose.pose.orientation)
            o.twist.twist.linear.x, o.twist.twist.angular.z = float(s.v), float(s.w)
            self.odom_pub.publish(o)
            set_stamp(self._clock.clock, t)
            self.clock_pub.publish(self._clock)

        def _publish_stats(self, wall0):
            lat = np.asarray(self.latencies) * 1e3
            self._stats.data = [
                float(self.world.sim_time_s),
                float(self.frame_count),
                time.perf_counter() - wall0,
                float(self.world.off_track_events),
                float(lat.mean()) if len(lat) else 0.0,
                float(lat.max()) if len(lat) else 0.0,
                float(self.lockstep_timeouts),
            ]
            self.stats_pub.publish(self._stats)

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
                if self.config.clock == "realtime":
                    reason = self._run_realtime()
                else:
                    reason = self._run_lockstep()
                if reason is None:
                    return  # stopped from outside
                self.end_reason = reason
                self._publish_stats(self._wall0)
                self._publish_status(reason)
                lat = np.asarray(self.latencies) * 1e3
                self.get_logger().info(
                    f"episode ended: {reason} at t={self.world.sim_time_s:.2f} s, progress "
                    f"{self.world.progress_m:.0f}/{self.circuit.length_m:.0f} m, {self.frame_count} frames, "
                    f"camera->command latency mean {lat.mean() if len(lat) else float('nan'):.2f} ms, "
                    f"{self.lockstep_timeouts} command time-outs"
                )
                if self.params["exit_on_end"]:
                    self._stop.wait(float(self.params["linger"]))
            except Exception as error:  # report, do not hang the launcher
                self.get_logger().error(f"simulation failed: {error!r}")
                self.end_reason = "error"
            finally:
                self.finished.set()

        def _end(self):
            return self._end_reason(self.world, self.timeout_s)

        def _run_lockstep(self):
            cfg, world, p = self.config, self.world, self.params
            frame_period = 1.0 / cfg.camera_rate_hz
            frame = np.empty((world.renderer.camera.height, world.renderer.camera.width, 3), np.uint8)
            applied = self._STOP
            pending = []
            next_frame_t = 0.0
            wait_s = float(p["command_timeout"])
            self._wall0 = time.perf_counter()
            while not self._stop.is_set():
                t = world.sim_time_s
                if t >= next_frame_t - 1e-9:
                    world.render(frame)
                    use_stats = self.count_publishers(p["brain_stats_topic"]) > 0
                    with self._cond:
                        seq0 = self._cmd_seq
                    sent = time.perf_counter()
                    self._publish_frame(frame, t)
                    with self._cond:
                        ok = self._cond.wait_for(
                            lambda: (
                                self._stop.is_set()
                                or (
                                    self._cmd_seq > seq0
                                    and (
                                        not use_stats
                                        or (self._answered_stamp is not None and abs(self._answered_stamp - t) < 1e-6)
                                    )
                                )
                            ),
                            timeout=wait_s,
                        )
                        cmd, got_at = self._cmd, self._cmd_wall
                    if self._stop.is_set():
                        return None
                    if ok:
                        latency = got_at - sent
                        self.latencies.append(latency)
                        pending.append((t + (latency if cfg.latency_s is None else cfg.latency_s), cmd))
                    else:
                        self.lockstep_timeouts += 1
                        self.get_logger().warning(
                            f"no command for frame t={t:.2f} s within {wait_s} s; keeping the last one",
                            throttle_duration_sec=5.0,
                        )
                    next_frame_t += frame_period
                while pending and pending[0][0] <= t + 1e-9:
                    applied = pending.pop(0)[1]
                world.step(applied)
                self._publish_odom_and_clock()
                reason = self._end()
                if reason:
                    return reason
                if world.sim_time_s % 1.0 < cfg.physics_dt_s - 1e-9:
                    self._publish_stats(self._wall0)
            return None

        def _run_realtime(self):
            cfg, world = self.config, self.world
            frame_period = 1.0 / cfg.camera_rate_hz
            next_frame_t = 0.0
            self._wall0 = wall0 = time.perf_counter()
            while not self._stop.is_set():
                t = world.sim_time_s
                if t >= next_frame_t - 1e-9:
                    self._publish_frame(world.render(), t)
                    next_frame_t += frame_period
                with self._cond:
                    cmd = self._cmd
                world.step(cmd)
                self._publish_odom_and_clock()
                reason = self._end()
                if reason:
                    return reason
                if world.sim_time_s % 1.0 < cfg.physics_dt_s - 1e-9:
                    self._publish_stats(wall0)
                ahead = world.sim_time_s - (time.perf_counter() - wall0)
                if ahead > 0:
                    self._stop.wait(ahead)
            return None

    return SimNode


SimNode = lazy_node_class(_make_node_class, "SimNode")


def main(args=None) -> int:
    from pilotnet_brain.errors import CircuitError, ConfigError

    return run_node(
        NODE_NAME,
        SimNode,
        lambda: (ConfigError, CircuitError, ValueError, FileNotFoundError),
        done=lambda node: node.finished.is_set(),
        on_start=lambda node: node.start(),
        on_stop=lambda node: node.stop(),
        exit_code=lambda node: 3 if node.end_reason in ("startup_failed", "error") else 0,
        args=args,
    )


if __name__ == "__main__":
    sys.exit(main())
