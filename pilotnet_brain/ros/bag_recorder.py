"""``bag_recorder``: record a driving run as a real rosbag2 bag (MCAP, or sqlite3), with its metadata.

Subscribes with raw (serialized) subscriptions to the camera, commands, odometry, clock, brain stats,
sim stats and episode status, and writes the CDR bytes as received with the pure-Python ``rosbags``
writer (no rosbag2_py needed), each topic with its full message definition and type hash, so
``ros2 bag info`` / ``ros2 bag play`` read the bag.  Timestamps are receive times (system clock), as
``ros2 bag record`` does.

Next to ``metadata.yaml`` it writes ``pilotnet_brain.json`` (see ``pilotnet_brain.bags.writer``): the run's
configuration (parameters below + ``run_config_json``) at once, and the metrics recomputed from the
closed bag when it stops.  The configuration also goes into ``metadata.yaml``'s ``custom_data``.

Stops (and closes the bag, which then reads back) on SIGINT/Ctrl-C, on SIGTERM, and, with
``stop_on_episode_end``, ``end_grace_s`` after the episode status announces the end of the run.  Only
SIGKILL loses the bag's index (an MCAP file without its summary; ``mcap recover`` can still salvage it).

Parameters (``config.BAG_RECORDER``, table in README.md; a bad value: one line, exit code 2): ``output`` (or ``bag_path``: directory to create; default ``runs/bags/run_<time>``),
``storage`` (``mcap`` | ``sqlite3``), ``record_camera`` (bool), ``camera_stride`` (keep every N-th image),
``camera_depth``, ``circuit``, ``direction``, ``scale``, ``brain``, ``clock``, ``reference_spacing_m``,
``brain_config`` (path or text of the brain preset; gives the brain label when ``brain`` is empty),
``run_config_json`` (any JSON object, merged into the metadata), ``query_nodes`` (default true: what was
not given is read from sim_node's / metrics_node's parameters), ``stop_on_episode_end`` (default true),
``end_grace_s`` (1.0), ``compute_metrics`` (default true), ``topic_<role>`` (topic names).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions

from pilotnet_brain.bags.score import metrics_from_bag
from pilotnet_brain.bags.writer import BagWriter, typestore, write_side_file
from pilotnet_brain.config import BAG_RECORDER
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.interfaces import DEFAULT_TOPICS, DEFAULT_TYPES, END_STATES
from pilotnet_brain.ros.declare import declare_node_parameters
from pilotnet_brain.ros.params import brain_label, load_brain_parameters


def _message_class(msgtype: str):
    """'pkg/msg/Type' -> the rclpy message class."""
    pkg, sub, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{sub}"), name)


def _qos_for(role: str, camera_depth: int):

    if role == "camera":
        qos = QoSProfile(
            **{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability", "history")},
            depth=camera_depth,
        )
        return qos
    if role == "clock":  # best effort: matches any publisher; a lost tick costs nothing
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        )
    if role in ("status", "sim_stats"):  # latched by sim_node
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=10,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1000,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def _bag_qos(qos):
    """rclpy QoSProfile -> rosbags Qos for the bag's offered_qos_profiles (so ros2 bag play can reuse it)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime  # noqa: PLC0415  (optional: rosbags)

    try:
        zero = QosTime(0, 0)
        return Qos(
            history=QosHistory(int(qos.history)),
            depth=int(qos.depth),
            reliability=QosReliability(int(qos.reliability)),
            durability=QosDurability(int(qos.durability)),
            deadline=zero,
            lifespan=zero,
            liveliness=QosLiveliness(int(qos.liveliness)),
            liveliness_lease_duration=zero,
            avoid_ros_namespace_conventions=False,
        )
    except Exception:
        return None


class _Recorder:
    """The node and its writer (rclpy imported by the caller)."""

    def __init__(self, node_name: str = BAG_RECORDER.node):

        self.node = node = Node(node_name)
        p = declare_node_parameters(node, BAG_RECORDER)
        output = p["output"] or p["bag_path"]  # `output` as in `ros2 bag record -o`
        self.bag_path = Path(output or f"runs/bags/run_{time.strftime('%Y%m%d_%H%M%S')}")
        self.storage = p["storage"]
        self.record_camera = p["record_camera"]
        self.camera_stride = p["camera_stride"]
        camera_depth = p["camera_depth"]
        self.stop_on_end = p["stop_on_episode_end"]
        self.end_grace_s = p["end_grace_s"]
        self.want_metrics = p["compute_metrics"]
        config = {
            "circuit": p["circuit"],
            "direction": p["direction"],
            "scale": p["scale"] or None,  # 0 = ask sim_node
            "brain": p["brain"],
            "clock": p["clock"],
            "reference_spacing_m": p["reference_spacing_m"] or None,  # 0 = ask metrics_node
        }
        brain_config = p["brain_config"]
        if brain_config:
            config["brain_config_path"] = brain_config if os.path.isfile(brain_config) else None
            config["brain_config"] = _load_yaml(brain_config)
        extra = p["run_config_json"]
        if extra:
            try:
                value = json.loads(extra)
            except json.JSONDecodeError as error:
                raise ConfigError(f"run_config_json is not JSON: {error}") from None
            if not isinstance(value, dict):
                raise ConfigError("run_config_json must hold a JSON object")
            config.update(value)
        if not config["brain"] and brain_config and os.path.isfile(brain_config):
            config["brain"] = _brain_label(brain_config) or ""
        config = {k: v for k, v in config.items() if v not in ("", None)}
        config["storage"] = self.storage
        config["camera_stride"] = self.camera_stride if self.record_camera else 0
        self.config = config
        self.topics = {role: p[f"topic_{role}"] for role in DEFAULT_TOPICS}

        self.writer = BagWriter(self.bag_path, self.storage, config)
        write_side_file(self.bag_path, config, None, self.topics)
        self._lock = threading.Lock()
        self.stop_requested = threading.Event()
        self._end_at = None
        self._camera_seen = 0
        self.subscriptions = []
        self._camera_depth = camera_depth
        self._gate_roles = ("camera", "cmd_vel", "stats")
        for role in self.topics:
            if role == "camera" and not self.record_camera:
                continue
            if role != "odom":
                self._subscribe(role)
        # Odometry last: sim_node starts the episode once its odometry has all its subscribers, so
        # subscribing to it only after the other topics have matched their publishers means nothing of
        # the run is missed (discovery of each publisher/subscription pair is independent and can lag).
        self._gate_deadline = time.monotonic() + p["gate_timeout_s"]
        self._gate_timer = node.create_timer(0.05, self._subscribe_odometry_when_matched)
        node.get_logger().info(f"recording {len(self.topics)} topics to {self.bag_path} ({self.storage})")
        # What the launcher did not pass, ask the nodes that know it (as `ros2 param get` would).
        self._param_sources = []
        if p["query_nodes"]:
            wanted = {
                "sim_node": ("circuit", "direction", "scale", "clock"),
                "metrics_node": ("circuit", "direction", "scale", "brain", "brain_config", "reference_spacing"),
            }
            for name, keys in wanted.items():
                keys = tuple(k for k in keys if self._missing(k))
                if keys:
                    self._param_sources.append(
                        {"client": AsyncParameterClient(node, name), "keys": keys, "future": None, "node": name}
                    )
            if self._param_sources:
                self._param_timer = node.create_timer(0.2, self._query_parameters)

    def _subscribe(self, role: str):
        topic, msgtype = self.topics[role], DEFAULT_TYPES[role]
        qos = _qos_for(role, self._camera_depth)
        bag_qos = _bag_qos(qos)
        self.writer.add_topic(topic, msgtype, [bag_qos] if bag_qos is not None else [])
        sub = self.node.create_subscription(
            _message_class(msgtype), topic, self._callback(role, topic, msgtype), qos, raw=True
        )
        self.subscriptions.append(sub)
        return sub

    def _subscribe_odometry_when_matched(self):
        gates = [
            sub
            for sub in self.subscriptions
            if sub.topic_name in {self.topics[r] for r in self._gate_roles if r in self.topics}
        ]
        matched = all(sub.get_publisher_count() > 0 for sub in gates)
        if not matched and time.monotonic() < self._gate_deadline:
            return
        if not matched:
            self.node.get_logger().warning("not every recorded topic has a publisher yet; recording odometry anyway")
        self._gate_timer.cancel()
        self._subscribe("odom")

    _ALIASES = {"reference_spacing": "reference_spacing_m", "brain_config": "brain_config_path"}

    def _missing(self, key: str) -> bool:
        return self.config.get(self._ALIASES.get(key, key)) in (None, "")

    def _query_parameters(self):

        for src in list(self._param_sources):
            if src["future"] is None:
                if src["client"].services_are_ready():
                    src["future"] = src["client"].get_parameters(list(src["keys"]))
                continue
            if not src["future"].done():
                continue
            self._param_sources.remove(src)
            try:
                values = [parameter_value_to_python(v) for v in src["future"].result().values]
            except Exception as error:  # noqa: BLE001
                self.node.get_logger().warning(f"could not read {src['node']}'s parameters: {error!r}")
                continue
            learned = {}
            for key, value in zip(src["keys"], values):
                if value in (None, "") or not self._missing(key):
                    continue
                if key == "brain_config":
                    self.config["brain_config_path"] = value
                    self.config["brain_config"] = _load_yaml(value)
                elif key == "reference_spacing":
                    self.config["reference_spacing_m"] = float(value)
                else:
                    self.config[key] = value
                learned[key] = value
            if not self.config.get("brain") and isinstance(self.config.get("brain_config"), dict):
                self.config["brain"] = _brain_label(self.config.get("brain_config_path"))
            if learned:
                self.node.get_logger().info(f"run configuration from {src['node']}: {learned}")
                self.writer.set_config(self.config)
                write_side_file(self.bag_path, self.config, None, self.topics)
        if not self._param_sources:
            self._param_timer.cancel()

    def _callback(self, role, topic, msgtype):
        writer = self.writer

        def on_message(data: bytes):
            stamp = time.time_ns()
            if role == "camera":
                self._camera_seen += 1
                if (self._camera_seen - 1) % self.camera_stride:
                    return
            with self._lock:
                if writer.closed:
                    return
                writer.write_raw(topic, stamp, data)
            if role == "status" and self.stop_on_end and self._end_at is None:
                state = _status_word(data)
                if state in END_STATES:
                    self.node.get_logger().info(f"episode ended ({state}); stopping in {self.end_grace_s:.1f} s")
                    self._end_at = time.monotonic() + self.end_grace_s

        return on_message

    def should_stop(self) -> bool:
        return self.stop_requested.is_set() or (self._end_at is not None and time.monotonic() >= self._end_at)

    def close(self) -> dict | None:
        """Close the bag (idempotent), then recompute and store the metrics; returns them (or None)."""
        with self._lock:
            if self.writer.closed:
                return None
            self.writer.close()
        counts = dict(self.writer.counts)
        metrics = None
        error = None
        if self.want_metrics and self.config.get("circuit"):
            try:
                metrics, _, _ = metrics_from_bag(self.bag_path)
            except Exception as exc:  # noqa: BLE001 - a bag without odometry still closes cleanly
                error = f"{type(exc).__name__}: {exc}"
        write_side_file(
            self.bag_path, self.config, metrics, self.topics, extra={"message_counts": counts, "metrics_error": error}
        )
        return metrics


def _status_word(data: bytes) -> str:
    try:
        return typestore().deserialize_cdr(data, "std_msgs/msg/String").data.strip()
    except Exception:
        return ""


def _brain_label(brain_config_path) -> str | None:
    """The brain's label as metrics_node derives it from the brain_node YAML."""
    try:
        return brain_label(load_brain_parameters(brain_config_path))
    except Exception:
        return None


def _load_yaml(text_or_path: str):

    try:
        if os.path.isfile(text_or_path):
            with open(text_or_path, encoding="utf-8") as f:
                return yaml.safe_load(f)
        return yaml.safe_load(text_or_path)
    except Exception:
        return text_or_path


def main(argv=None) -> int:

    # Our own SIGINT/SIGTERM handlers: stop spinning, close the writer, then shut down.
    rclpy.init(args=argv if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    recorder = None
    try:
        try:
            recorder = _Recorder()
        except ConfigError as error:  # bad parameters: one line and exit code 2, as the other nodes
            rclpy.logging.get_logger(BAG_RECORDER.node).fatal(f"cannot start: {error}")
            return 2
        signals_seen = []

        def on_signal(signum, _frame):
            signals_seen.append(signum)
            recorder.stop_requested.set()
            if len(signals_seen) > 1:  # second signal: close now, from the handler
                recorder.close()
                os._exit(128 + signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, on_signal)

        executor = SingleThreadedExecutor()
        executor.add_node(recorder.node)
        while not recorder.should_stop() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        metrics = recorder.close()
        log = recorder.node.get_logger()
        log.info(
            f"bag closed: {recorder.bag_path} "
            f"({sum(recorder.writer.counts.values())} messages)"
            + (f"; completed {metrics['completed_pct']:.1f} %" if metrics else "")
        )
        executor.remove_node(recorder.node)
        recorder.node.destroy_node()
        return 0
    finally:
        if recorder is not None:
            recorder.close()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
