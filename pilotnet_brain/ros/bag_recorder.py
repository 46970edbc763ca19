"""``bag_recorder``: record a driving run as a real rosbag2 bag (MCAP, or sqlite3), with its metadata.

Subscribes with raw (serialized) subscriptions to the camera, commands, odometry, clock, brain stats,
sim stats and episode status, and writes the CDR bytes as received with the pure-Python ``rosbags``
writer (no rosbag2_py needed), each topic with its full message definition and type hash, so
``ros2 bag info`` / ``ros2 bag play`` read the bag.  Timestamps are receive times (system clock), as
``ros2 bag record`` does.

Every message published during the episode is in the bag: as ``ros2 bag record``, a topic is subscribed
once its publishers are known, with their reliability and durability, and the bag's
``offered_qos_profiles`` are the publishers' QoS; the queues are KEEP_ALL (a recorder that falls behind
catches up instead of losing the oldest messages); odometry and the episode status - what sim_node waits
for before it starts the episode - are subscribed only once every other topic has matched (or after
``gate_timeout_s``); and after the stop, what is already queued is written before the bag closes.

Next to ``metadata.yaml`` it writes ``pilotnet_brain.json`` (see ``pilotnet_brain.bags.writer``): the run's
configuration (parameters below + ``run_config_json``) at once, and the metrics recomputed from the
closed bag when it stops.  The configuration also goes into ``metadata.yaml``'s ``custom_data``.

Stops (and closes the bag, which then reads back) on SIGINT/Ctrl-C, on SIGTERM, and, with
``stop_on_episode_end``, ``end_grace_s`` after the episode status announces the end of the run; the side
file's ``episode_end`` says whether the bag saw that end.  A second signal closes at once.  Only SIGKILL
loses the bag's index (an MCAP file without its summary; ``mcap recover`` can still salvage it).  An
existing output directory is refused (one line, exit code 2): a bag is never overwritten.

Parameters (``config.BAG_RECORDER``, table in README.md; a bad value: one line, exit code 2): ``output`` (or ``bag_path``: directory to create; default ``runs/bags/run_<time>``),
``storage`` (``mcap`` | ``sqlite3``), ``record_camera`` (bool), ``camera_stride`` (keep every N-th image),
``circuit``, ``direction``, ``scale``, ``brain``, ``clock``, ``reference_spacing_m``,
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
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from pilotnet_brain.bags.score import metrics_from_bag
from pilotnet_brain.bags.writer import BagWriter, offered_qos, typestore, write_side_file
from pilotnet_brain.config import BAG_RECORDER
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.interfaces import DEFAULT_TOPICS, DEFAULT_TYPES, END_STATES
from pilotnet_brain.ros.declare import declare_node_parameters
from pilotnet_brain.ros.node_runtime import wall_timer
from pilotnet_brain.ros.params import brain_label, load_brain_parameters


def _message_class(msgtype: str):
    """'pkg/msg/Type' -> the rclpy message class."""
    pkg, sub, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{sub}"), name)


#: Subscribed last: sim_node starts the episode once odometry and the episode status have their
#: subscribers, so by then every other topic is being recorded and nothing of the run is missed.
WITHHELD_ROLES = ("odom", "status")
#: After the stop: keep handling queued messages until none came for this long (wall s) ...
DRAIN_QUIET_S = 0.3
#: ... but no longer than this (a live stream never goes quiet; the launcher escalates after 5 s).
DRAIN_LIMIT_S = 3.0


def subscription_qos(offered) -> QoSProfile:
    """The recorder's QoS for a topic, adapted to its publishers' offered QoS as rosbag2 does.

    Reliable when every publisher is (a best-effort one would not match otherwise), transient local when
    every publisher is (a latched message sent before the subscription still arrives), and KEEP_ALL: a
    message waits however far the recorder falls behind, where a KEEP_LAST queue replaces the oldest.
    """
    offered = list(offered)
    reliable = bool(offered) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_ALL,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def offered_profile(qos):
    """A publisher's rclpy QoSProfile (from get_publishers_info_by_topic) -> its bag metadata entry."""
    return offered_qos(
        history=qos.history,
        depth=qos.depth,
        reliability=qos.reliability,
        durability=qos.durability,
        deadline_ns=qos.deadline.nanoseconds,
        lifespan_ns=qos.lifespan.nanoseconds,
        liveliness=qos.liveliness,
        liveliness_lease_duration_ns=qos.liveliness_lease_duration.nanoseconds,
        avoid_ros_namespace_conventions=qos.avoid_ros_namespace_conventions,
    )


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
        self._lock = threading.RLock()  # re-entrant: a second signal closes the bag from its handler
        self.stop_requested = threading.Event()
        self._end_at = None
        self._camera_seen = 0
        self.received = 0  # messages handled by the callbacks (draining watches it)
        self.end_state = None  # the episode's end as the status announced it
        self.subscriptions = {}  # role -> subscription
        # Each topic is subscribed once its publishers are known, with QoS adapted to theirs;
        # odometry and status last (WITHHELD_ROLES), once every other topic has matched.
        self._pending = [r for r in self.topics if r != "camera" or self.record_camera]
        self.gate_timeout_s = p["gate_timeout_s"]
        self._gate_deadline = time.monotonic() + self.gate_timeout_s
        self._gate_open = False
        self._subscribe_timer = wall_timer(node, 0.05, self._subscribe_published)  # runs before /clock
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
                self._param_timer = wall_timer(node, 0.2, self._query_parameters)

    def _subscribe(self, role: str, publishers) -> None:
        """Subscribe `role`'s topic with QoS adapted to its publishers; the bag records what they offer."""
        topic = self.topics[role]
        types = {info.topic_type for info in publishers}
        # the type its publishers advertise, where they agree on one the bag can store
        msgtype = types.pop() if len(types) == 1 and next(iter(types)) in typestore().types else DEFAULT_TYPES[role]
        offered = [info.qos_profile for info in publishers]
        self.writer.add_topic(topic, msgtype, [offered_profile(q) for q in offered])
        self.subscriptions[role] = self.node.create_subscription(
            _message_class(msgtype), topic, self._callback(role, topic), subscription_qos(offered), raw=True
        )

    def _subscribe_published(self):
        """Timer: subscribe the topics whose publishers have appeared; odometry and status once the rest matched."""
        if not self._gate_open:
            waiting = [self.topics[r] for r in self._pending if r not in WITHHELD_ROLES]
            waiting += [
                sub.topic_name
                for role, sub in self.subscriptions.items()
                if role not in WITHHELD_ROLES and sub.get_publisher_count() == 0
            ]
            if not waiting:
                self._gate_open = True
            elif time.monotonic() >= self._gate_deadline:
                self._gate_open = True
                self.node.get_logger().warning(
                    f"no publisher on {', '.join(waiting)} after {self.gate_timeout_s:g} s; "
                    "recording odometry and status anyway (the rest once they appear)"
                )
        for role in list(self._pending):
            if role in WITHHELD_ROLES and not self._gate_open:
                continue
            publishers = self.node.get_publishers_info_by_topic(self.topics[role])
            if publishers:
                self._subscribe(role, publishers)
                self._pending.remove(role)
        if not self._pending:
            self._subscribe_timer.cancel()

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

    def _callback(self, role, topic):
        writer = self.writer

        def on_message(data: bytes):
            stamp = time.time_ns()
            self.received += 1
            if role == "camera":
                self._camera_seen += 1
                if (self._camera_seen - 1) % self.camera_stride:
                    return
            with self._lock:
                if writer.closed:
                    return
                writer.write_raw(topic, stamp, data)
            if role == "status" and self.end_state is None:
                state = _status_word(data)
                if state in END_STATES:
                    self.end_state = state
                    if self.stop_on_end:
                        self.node.get_logger().info(f"episode ended ({state}); stopping in {self.end_grace_s:.1f} s")
                        self._end_at = time.monotonic() + self.end_grace_s

        return on_message

    def should_stop(self) -> bool:
        return self.stop_requested.is_set() or (self._end_at is not None and time.monotonic() >= self._end_at)

    def drain(self, executor, quiet_s: float = DRAIN_QUIET_S, limit_s: float = DRAIN_LIMIT_S) -> None:
        """Before closing: handle what DDS already delivered (the KEEP_ALL queues hold it) until quiet."""
        now = time.monotonic()
        deadline, last_change, seen = now + limit_s, now, self.received
        while rclpy.ok() and now < deadline and now - last_change < quiet_s:
            executor.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if self.received != seen:
                seen, last_change = self.received, now

    def close(self) -> dict | None:
        """Close the bag (idempotent), then recompute and store the metrics; returns them (or None).

        A topic that never had a publisher is still listed in the bag, with no message."""
        with self._lock:
            if self.writer.closed:
                return None
            for role in self._pending:
                self.writer.add_topic(self.topics[role], DEFAULT_TYPES[role])
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
            self.bag_path,
            self.config,
            metrics,
            self.topics,
            extra={"message_counts": counts, "metrics_error": error, "episode_end": self.end_state},
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
        except (ConfigError, FileExistsError) as error:  # bad parameters, an existing bag: one line, exit code 2
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
        recorder.drain(executor)
        metrics = recorder.close()
        counts = recorder.writer.counts
        recorder.node.get_logger().info(
            f"bag closed: {recorder.bag_path} ({sum(counts.values())} messages: "
            + ", ".join(f"{topic} {n}" for topic, n in counts.items())
            + ")"
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
