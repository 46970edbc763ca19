"""metrics_node (evaluator): scores one run from what it hears on the ROS graph.

Subscribes /F1ROS/odom, /F1ROS/cmd_vel, /brain_node/stats, /sim_node/stats and /F1ROS/episode_status.
When the status says the run ended (lap_completed | off_track | timeout) it waits until the odometry up
to the simulator's final time has arrived (at most `settle_timeout` s), builds a `metrics.RunRecord`,
writes `<output_dir>/<circuit>_<direction>_<brain>.json` (the keys of `metrics.compute_metrics`, plus
`camera_to_command_latency_ms` (mean) with its per-frame `_p50_ms` / `_p99_ms`, `lockstep_timeouts`,
`commands_received` as extras; `condition` is its `conditions` parameter, sim_node's as the launch file
and the launcher pass it, null when ''), appends a row to `<output_dir>/summary.csv`, optionally draws the
trajectory, and exits (exit code 0), which ends the graph (the launch file shuts down on its exit; so does
the launcher).

Hook for offline analysis (`pilotnet-brain analyze` on a bag): `metrics_from_arrays(...)` recomputes
the same metrics from the recorded arrays without ROS; `brain_stats_arrays` unpacks ~/stats messages.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, String

from pilotnet_brain import interfaces as topics
from pilotnet_brain.bags.score import run_record_from_arrays
from pilotnet_brain.config import METRICS_NODE
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.evaluation.drive import run_slug
from pilotnet_brain.evaluation.metrics import compute_metrics, metrics_table, write_metrics_json
from pilotnet_brain.evaluation.plots import plot_trajectory
from pilotnet_brain.ros.declare import declare_node_parameters
from pilotnet_brain.ros.image_conversion import stamp_to_s
from pilotnet_brain.ros.node_runtime import run_node, wall_timer
from pilotnet_brain.ros.params import brain_label, load_brain_parameters
from pilotnet_brain.ros.qos import LATCHED, RELIABLE
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.conditions import parse_conditions
from pilotnet_brain.sim.record import RunRecord

NODE_NAME = METRICS_NODE.node  # parameters: config.METRICS_NODE


def brain_stats_arrays(stats_rows) -> dict:
    """Rows of ~/stats data (topics.BRAIN_STATS_FIELDS) -> arrays in seconds: frame_stamp_s,
    inference_s, iteration_s, period_s, overhead_s."""
    a = np.asarray(list(stats_rows), dtype=float).reshape(-1, len(topics.BRAIN_STATS_FIELDS))
    return {
        "frame_stamp_s": a[:, 0],
        "inference_s": a[:, 1] / 1e3,
        "iteration_s": a[:, 2] / 1e3,
        "period_s": a[:, 3] / 1e3,
        "overhead_s": a[:, 4] / 1e3,
    }


def record_from_arrays(
    circuit: str,
    direction: str,
    brain: str,
    odom_t,
    odom_xy,
    iteration_s,
    inference_s,
    frame_count: int,
    wall_time_s: float,
    end_reason: str,
    scale: float = 1.0,
    reference_spacing_m: float = 1.0,
) -> RunRecord:
    """A RunRecord from recorded arrays: odometry (sim time, x/y) and brain timings (s).

    Delegates to `bags.run_record_from_arrays`, the one construction shared with `analyze` (bags), so a
    live run and its bag score the same.
    """

    return run_record_from_arrays(
        circuit=circuit,
        direction=direction,
        brain=brain,
        t=odom_t,
        xy=odom_xy,
        iteration_wall_s=iteration_s,
        inference_s=inference_s,
        frame_count=frame_count,
        off_track_events=1 if end_reason == topics.OFF_TRACK else 0,
        wall_time_s=wall_time_s,
        end_reason=end_reason,
        scale=scale,
        reference_spacing_m=reference_spacing_m,
    )


def metrics_from_arrays(*args, **kwargs) -> dict:
    """`compute_metrics(record_from_arrays(...))`: the same metrics metrics_node writes, from a bag's arrays."""
    return compute_metrics(record_from_arrays(*args, **kwargs))


def append_summary_row(metrics: dict, path) -> None:
    """Append one run to a CSV table (header written when the file is new)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = metrics_table([metrics], "csv")
    if path.exists() and path.stat().st_size:
        text = text.split("\n", 1)[1]
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(text)


class MetricsNode(Node):
    def __init__(self, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        p = self.params = declare_node_parameters(self, METRICS_NODE)
        self.brain = p["brain"]
        if not self.brain and p["brain_config"]:
            self.brain = brain_label(load_brain_parameters(p["brain_config"]))
        self.brain = self.brain or "unknown"
        self.condition = None  # the simulator's conditions, as sim_node was given them; '' = not known
        if p["conditions"]:
            try:
                self.condition = parse_conditions(p["conditions"]).label
            except ValueError as error:
                raise ConfigError(f"{NODE_NAME}: conditions={p['conditions']!r}: {error}") from None

        load_circuit(p["circuit"], direction=p["direction"], scale=float(p["scale"]))  # fail early
        self._run_slug = run_slug
        self.odom_t, self.odom_xy, self.stats, self.commands = [], [], [], 0
        self.sim_stats = None
        self.end_reason = None
        self._end_wall = None
        self.metrics = None
        self.metrics_path = None
        self.done = False
        self._stamp_to_s = stamp_to_s
        self._cmd_sub = self.create_subscription(Twist, p["cmd_vel_topic"], self._on_cmd, 10)
        self._stats_sub = self.create_subscription(
            Float64MultiArray, p["brain_stats_topic"], self._on_brain_stats, RELIABLE
        )
        self.create_subscription(Float64MultiArray, p["sim_stats_topic"], self._on_sim_stats, LATCHED)
        self.create_subscription(String, p["status_topic"], self._on_status, LATCHED)
        wall_timer(self, 0.05, self._check_done)  # wall clock: /clock stops when the episode ends
        # Odometry last: sim_node starts the episode once its odometry has all its subscribers, so
        # subscribing only after the brain's topics have matched publishers means no brain stats
        # are missed (each publisher/subscription pair is discovered independently).
        self._odom_args = (Odometry, p["odom_topic"], self._on_odom, RELIABLE)
        self._gate_deadline = time.monotonic() + topics.DISCOVERY_GATE_TIMEOUT_S
        self._gate_timer = wall_timer(self, 0.05, self._subscribe_odometry_when_matched)
        self.get_logger().info(f"scoring {self.brain} on {p['circuit']} {p['direction']} -> {p['output_dir']}")

    def _on_odom(self, msg):
        self.odom_t.append(self._stamp_to_s(msg.header.stamp))
        pos = msg.pose.pose.position
        self.odom_xy.append((pos.x, pos.y))

    def _on_cmd(self, msg):
        self.commands += 1

    def _on_brain_stats(self, msg):
        self.stats.append(tuple(msg.data[: len(topics.BRAIN_STATS_FIELDS)]))

    def _on_sim_stats(self, msg):
        self.sim_stats = topics.stats_dict(msg.data, topics.SIM_STATS_FIELDS)

    def _on_status(self, msg):
        if msg.data in topics.END_STATES and self.end_reason is None:
            self.end_reason = msg.data
            self._end_wall = time.monotonic()

    def _check_done(self):
        if self.end_reason is None or self.done:
            return
        final_t = self.sim_stats["sim_time_s"] if self.sim_stats else None
        have_all = final_t is not None and self.odom_t and self.odom_t[-1] >= final_t - 1e-6
        if not have_all and time.monotonic() - self._end_wall < float(self.params["settle_timeout"]):
            return
        if not have_all:
            self.get_logger().warning("odometry incomplete at the end of the run; scoring what arrived")
        self.finish()

    def finish(self):
        p = self.params
        s = self.sim_stats or {}
        stats = brain_stats_arrays(self.stats)
        record = record_from_arrays(
            p["circuit"],
            p["direction"],
            self.brain,
            self.odom_t,
            self.odom_xy,
            stats["iteration_s"],
            stats["inference_s"],
            int(s.get("frame_count", len(self.stats))),
            s.get("wall_time_s", 0.0),
            self.end_reason,
            scale=float(p["scale"]),
            reference_spacing_m=float(p["reference_spacing"]),
        )
        m = compute_metrics(record)
        m["condition"] = self.condition
        m["camera_to_command_latency_ms"] = s.get("latency_mean_ms")
        m["camera_to_command_latency_p50_ms"] = s.get("latency_p50_ms")
        m["camera_to_command_latency_p99_ms"] = s.get("latency_p99_ms")
        m["lockstep_timeouts"] = int(s.get("lockstep_timeouts", 0))
        m["commands_received"] = int(self.commands)
        m["odometry_samples"] = len(self.odom_t)
        out = Path(p["output_dir"])
        slug = self._run_slug(record.circuit, record.direction, record.brain)
        self.metrics_path = out / f"{slug}.json"
        write_metrics_json(m, self.metrics_path)
        append_summary_row(m, out / "summary.csv")
        if p["plot"]:
            try:
                c = load_circuit(p["circuit"], direction=p["direction"], scale=float(p["scale"]))
                plot_trajectory(record, m, out / f"{slug}.png", circuit_xy=c.centerline, half_width_m=c.half_width_m)
            except Exception as error:
                self.get_logger().warning(f"trajectory plot failed: {error!r}")
        self.metrics = m
        self.done = True
        self.get_logger().info(
            f"{record.end_reason}: completed {m['completed_pct']:.1f} %, brain "
            f"{m['brain_iteration_frequency_hz'] or 0:.1f} Hz -> {self.metrics_path}"
        )

    def _subscribe_odometry_when_matched(self):
        matched = self._cmd_sub.get_publisher_count() > 0 and self._stats_sub.get_publisher_count() > 0
        if not matched and time.monotonic() < self._gate_deadline:
            return
        if not matched:
            self.get_logger().warning("brain_node's topics have no publisher yet; scoring odometry anyway")
        self._gate_timer.cancel()
        self.create_subscription(*self._odom_args)


def main(args=None) -> int:
    return run_node(NODE_NAME, MetricsNode, done=lambda node: node.done and node.params["exit_on_done"], args=args)


if __name__ == "__main__":
    sys.exit(main())
