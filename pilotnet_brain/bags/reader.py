"""Read a run's rosbag2 bag (see :mod:`bags.writer`) back into arrays, with the pure-Python ``rosbags``.

What is decoded is what this package's nodes publish (:mod:`interfaces`):

* odometry (``nav_msgs/Odometry``): ``header.stamp`` (simulated time), ``pose.pose.position``, yaw
  and ``twist.twist.linear.x``;
* commands (``geometry_msgs/Twist``), time-stamped with the latest ``/clock``;
* brain stats: ``std_msgs/Float64MultiArray`` rows in ``BRAIN_STATS_FIELDS`` order (a row labelled
  with other fields is refused);
* sim stats: ``Float64MultiArray`` rows in ``SIM_STATS_FIELDS`` order;
* episode status: ``std_msgs/String`` holding one of ``EPISODE_STATES``;
* camera messages are counted, not decoded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import yaml

from pilotnet_brain.bags.writer import CUSTOM_DATA_KEY, is_bag, read_side_file, typestore
from pilotnet_brain.interfaces import (
    BRAIN_STATS_FIELDS,
    DEFAULT_TOPICS,
    RUNNING,
    SIM_STATS_FIELDS,
    WAITING,
    stats_dict,
)

__all__ = ["BagRun", "bag_summary", "read_bag"]


def _status_end_reason(status: str | None) -> str | None:
    """The end reason an episode status announces (anything but waiting/running), or None while the run goes on."""
    state = (status or "").strip()
    return state if state and state not in (WAITING, RUNNING) else None


@dataclass
class BagRun:
    """Everything a run's bag holds, as arrays (times in seconds)."""

    path: Path
    config: dict
    topics: dict
    storage: str
    # odometry
    t: np.ndarray  # (M,) header stamps (simulated time)
    xy: np.ndarray  # (M, 2)
    speed: np.ndarray  # (M,) twist.linear.x
    yaw: np.ndarray  # (M,)
    odom_recv_ns: np.ndarray  # (M,) bag (receive) timestamps
    # commands
    command_t: np.ndarray  # (N,) simulated time when received (latest /clock), else receive time
    commands: np.ndarray  # (N, 2) linear.x, angular.z
    brain_stats: np.ndarray  # (K, len(BRAIN_STATS_FIELDS)) the brain-stats rows as published
    statuses: list = field(default_factory=list)  # episode status words, oldest first
    sim_stats: list = field(default_factory=list)  # sim_node's stats, oldest first (the last is final)
    camera_count: int = 0
    clock_count: int = 0
    message_counts: dict = field(default_factory=dict)
    duration_s: float = 0.0
    side_file: dict | None = None

    @property
    def end_reason(self) -> str:
        """The end reason of the last status that announced one, else ""."""
        for status in reversed(self.statuses):
            reason = _status_end_reason(status)
            if reason:
                return reason
        return ""


def _stamp_s(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _brain_stats_row(msg, topic: str) -> tuple | None:
    """The first len(BRAIN_STATS_FIELDS) values of a brain-stats message (None for a shorter one)."""
    dims = msg.layout.dim
    if len(dims) and dims[0].label and tuple(dims[0].label.split(",")) != BRAIN_STATS_FIELDS:
        raise ValueError(f"brain stats on {topic} are labelled {dims[0].label!r}, not {','.join(BRAIN_STATS_FIELDS)!r}")
    data = msg.data
    return tuple(float(v) for v in data[: len(BRAIN_STATS_FIELDS)]) if len(data) >= len(BRAIN_STATS_FIELDS) else None


def _bag_metadata(path) -> dict:
    """``rosbag2_bagfile_information`` of ``metadata.yaml``."""
    with open(Path(path) / "metadata.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return data.get("rosbag2_bagfile_information", {}) or {}


def _read_custom_config(info: Mapping) -> dict:
    custom = info.get("custom_data") or {}
    text = custom.get(CUSTOM_DATA_KEY) if isinstance(custom, dict) else None
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_bag(path, topics: Mapping | None = None) -> BagRun:
    """Read a run's bag (MCAP or sqlite3) into a :class:`BagRun`.

    Topic roles are resolved from ``topics``, else the side file's ``topics``, else the message
    types present (the one Odometry topic is the odometry, and so on), else ``DEFAULT_TOPICS``.
    """
    from rosbags.rosbag2 import Reader  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

    path = Path(path)
    if not is_bag(path):
        raise FileNotFoundError(f"{path}: not a rosbag2 directory (no metadata.yaml)")
    side = read_side_file(path)
    ts = typestore()
    info = _bag_metadata(path)
    config = _read_custom_config(info)
    if side and isinstance(side.get("config"), dict):
        config = {**config, **side["config"]}
    storage = str(info.get("storage_identifier", ""))
    with Reader(path) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        roles = dict(DEFAULT_TOPICS)
        if side and isinstance(side.get("topics"), dict):
            roles.update({k: v for k, v in side["topics"].items() if isinstance(v, str)})
        if topics:
            roles.update(topics)
        # Fall back on message types for roles whose topic is absent.
        for role, msgtype in (
            ("odom", "nav_msgs/msg/Odometry"),
            ("cmd_vel", "geometry_msgs/msg/Twist"),
            ("camera", "sensor_msgs/msg/Image"),
            ("clock", "rosgraph_msgs/msg/Clock"),
        ):
            if roles.get(role) not in by_topic:
                matches = [c.topic for c in reader.connections if c.msgtype == msgtype]
                if len(matches) == 1:
                    roles[role] = matches[0]
        topic_role = {v: k for k, v in roles.items()}

        t, xy, speed, yaw, odom_recv = [], [], [], [], []
        cmd_t, cmd_recv, cmds = [], [], []
        brain_stats, statuses, sim_stats = [], [], []
        camera = clock = 0
        last_clock = None
        counts: dict[str, int] = {}
        first_ns = last_ns = None
        wanted = [c for c in reader.connections if c.topic in topic_role]
        for conn, timestamp, raw in reader.messages(connections=wanted):
            role = topic_role[conn.topic]
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            first_ns = timestamp if first_ns is None else min(first_ns, timestamp)
            last_ns = timestamp if last_ns is None else max(last_ns, timestamp)
            if role == "camera":
                camera += 1  # no need to decode 900 kB images
                continue
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            if role == "odom":
                t.append(_stamp_s(msg.header.stamp))
                p = msg.pose.pose.position
                xy.append((p.x, p.y))
                speed.append(msg.twist.twist.linear.x)
                q = msg.pose.pose.orientation
                yaw.append(math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z)))
                odom_recv.append(timestamp)
            elif role == "cmd_vel":
                cmd_t.append(last_clock if last_clock is not None else math.nan)
                cmd_recv.append(timestamp)
                cmds.append((msg.linear.x, msg.angular.z))
            elif role == "clock":
                clock += 1
                last_clock = _stamp_s(msg.clock)
            elif role == "stats" and conn.msgtype == "std_msgs/msg/Float64MultiArray":
                row = _brain_stats_row(msg, conn.topic)
                if row is not None:
                    brain_stats.append(row)
            elif role == "status" and conn.msgtype == "std_msgs/msg/String":
                statuses.append(msg.data.strip())
            elif role == "sim_stats" and conn.msgtype == "std_msgs/msg/Float64MultiArray":
                sim_stats.append(stats_dict(msg.data, SIM_STATS_FIELDS))
    t_arr = np.asarray(t, dtype=float)
    cmd_t_arr = np.asarray(cmd_t, dtype=float)
    missing = np.isnan(cmd_t_arr)
    if missing.any() and len(t_arr) >= 2:
        # No /clock before the command: map its receive time onto simulated time through the odometry.
        cmd_t_arr[missing] = np.interp(
            np.asarray(cmd_recv, dtype=float)[missing], np.asarray(odom_recv, dtype=float), t_arr
        )
    order = np.argsort(t_arr, kind="stable") if len(t_arr) else np.zeros(0, dtype=int)
    xy_arr = np.asarray(xy, dtype=float).reshape(-1, 2)
    return BagRun(
        path=path,
        config=config,
        topics=roles,
        storage=storage,
        t=t_arr[order],
        xy=xy_arr[order],
        speed=np.asarray(speed, dtype=float)[order],
        yaw=np.asarray(yaw, dtype=float)[order],
        odom_recv_ns=np.asarray(odom_recv, dtype=np.int64)[order],
        command_t=cmd_t_arr,
        commands=np.asarray(cmds, dtype=float).reshape(-1, 2),
        brain_stats=np.asarray(brain_stats, dtype=float).reshape(-1, len(BRAIN_STATS_FIELDS)),
        statuses=statuses,
        sim_stats=sim_stats,
        camera_count=camera,
        clock_count=clock,
        message_counts=counts,
        duration_s=(last_ns - first_ns) * 1e-9 if first_ns is not None else 0.0,
        side_file=side,
    )


def bag_summary(path) -> dict:
    """Topics, types and counts of a bag (what ``ros2 bag info`` shows), from its metadata."""
    from rosbags.rosbag2 import Reader  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

    info = _bag_metadata(path)
    with Reader(Path(path)) as reader:
        return {
            "storage": info.get("storage_identifier"),
            "duration_s": reader.duration * 1e-9,
            "message_count": reader.message_count,
            "topics": {c.topic: {"type": c.msgtype, "count": c.msgcount} for c in reader.connections},
            "custom_data": info.get("custom_data") or {},
        }
