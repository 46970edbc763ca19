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
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import yaml

from pilotnet_brain.bags.writer import CUSTOM_DATA_KEY, SIDE_FILE, STORAGE_IDS, read_side_file, typestore
from pilotnet_brain.errors import BagError
from pilotnet_brain.interfaces import (
    BRAIN_STATS_FIELDS,
    DEFAULT_TOPICS,
    RUNNING,
    SIM_STATS_FIELDS,
    WAITING,
    stats_dict,
)

__all__ = ["BagRun", "bag_summary", "read_bag", "recover_mcap_messages"]


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
    recovered: str | None = None  # how many messages were salvaged from a bag without its index

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


#: Errors the storage layer raises on a damaged file (rosbags' ReaderError is added where rosbags is imported).
_DAMAGE = (OSError, EOFError, ValueError, KeyError, IndexError, struct.error)


class _StorageDamaged(Exception):
    """Internal: the storage file could not be read to its end through rosbags (its index or data is damaged)."""


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(error, 'problem', None) or error}{where}"


def _bag_metadata(path) -> dict:
    """``rosbag2_bagfile_information`` of ``metadata.yaml``, checked: a BagError names what is wrong."""
    meta = Path(path) / "metadata.yaml"
    try:
        text = meta.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BagError(f"{meta} cannot be read: {error}") from None
    if not text.strip():
        raise BagError(f"{meta} is empty: not a rosbag2 bag's metadata")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BagError(f"{meta} is not valid YAML: {_yaml_problem(error)}") from None
    info = data.get("rosbag2_bagfile_information") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise BagError(f"{meta} has no 'rosbag2_bagfile_information' mapping: not a rosbag2 bag's metadata")
    return info


def _check_storage(path: Path, info: Mapping) -> str:
    """The bag's storage identifier, once it is known and its files are all there."""
    storage = str(info.get("storage_identifier", ""))
    if storage not in STORAGE_IDS:
        raise BagError(f"{path}: unknown bag storage {storage!r} in metadata.yaml (readable: {', '.join(STORAGE_IDS)})")
    files = info.get("relative_file_paths")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise BagError(f"{path}: metadata.yaml lists no storage files (relative_file_paths)")
    for name in files:
        if not (path / name).is_file():
            raise BagError(f"{path}: the storage file {name} listed in metadata.yaml is missing")
    return storage


def _read_side_file(path: Path) -> dict | None:
    try:
        side = read_side_file(path)
    except (OSError, ValueError) as error:
        raise BagError(f"{path / SIDE_FILE} cannot be read as JSON: {error}") from None
    if side is not None and not isinstance(side, dict):
        raise BagError(f"{path / SIDE_FILE} is not a JSON object")
    return side


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


def _guarded(messages, damage: tuple):
    """The messages of an indexed reader as (topic, msgtype, receive_ns, cdr); damage becomes _StorageDamaged."""
    iterator = iter(messages)
    while True:
        try:
            connection, timestamp, raw = next(iterator)
        except StopIteration:
            return
        except damage as error:
            raise _StorageDamaged(" ".join(str(error).split()) or type(error).__name__) from None
        yield connection.topic, connection.msgtype, timestamp, raw


def _read_indexed(path: Path, collect) -> BagRun:
    """``collect(connections, messages)`` over rosbags' indexed reader; a damaged storage is _StorageDamaged."""
    from rosbags.rosbag2 import Reader  # noqa: PLC0415 (rosbags: the optional 'ros' extra)
    from rosbags.rosbag2.errors import ReaderError  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

    damage = (ReaderError, *_DAMAGE)
    try:
        reader = Reader(path)
        reader.open()
    except damage as error:
        raise _StorageDamaged(" ".join(str(error).split()) or type(error).__name__) from None
    try:
        connections = [(c.topic, c.msgtype) for c in reader.connections]
        return collect(connections, _guarded(reader.messages(), damage))
    finally:
        try:
            reader.close()
        except damage:
            pass  # closing a damaged file: nothing left to save


def _mcap_records(file: Path):
    """("channel", topic, msgtype) and ("message", topic, msgtype, log_time_ns, data) of an MCAP file read
    record by record, without its summary, up to the first damaged or missing record; last
    ("end", complete) says whether the file was whole (footer reached)."""
    from mcap.exceptions import McapError  # noqa: PLC0415 (mcap: the optional 'ros' extra)
    from mcap.records import Channel, Footer, Message, Schema  # noqa: PLC0415 (mcap: the optional 'ros' extra)
    from mcap.stream_reader import StreamReader  # noqa: PLC0415 (mcap: the optional 'ros' extra)

    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    complete = False
    with open(file, "rb") as stream:
        try:
            for record in StreamReader(stream, validate_crcs=True).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
                    yield ("channel", *channels[record.id])
                elif isinstance(record, Message) and record.channel_id in channels:
                    yield ("message", *channels[record.channel_id], record.log_time, record.data)
                elif isinstance(record, Footer):
                    complete = True
        except (McapError, *_DAMAGE):
            pass  # the rest of the file is missing or damaged: keep what came before
    yield ("end", complete)


def recover_mcap_messages(files) -> tuple[list, int, int]:
    """Scan MCAP files without their index (what a killed recorder leaves): ``(connections, intact, damaged)``:
    the (topic, msgtype) pairs, how many messages are intact, how many files are cut short or lack
    their summary. :func:`recovered_messages` then yields those messages."""
    connections: dict[str, str] = {}
    intact = damaged = 0
    for file in files:
        for item in _mcap_records(file):
            if item[0] == "channel":
                connections.setdefault(item[1], item[2])
            elif item[0] == "message":
                intact += 1
            else:
                damaged += not item[1]
    return list(connections.items()), intact, damaged


def recovered_messages(files):
    """The intact messages of MCAP files read without their index, as (topic, msgtype, log_time_ns, data)."""
    for file in files:
        for item in _mcap_records(file):
            if item[0] == "message":
                yield item[1:]


def _resolve_roles(connections, side: dict | None, topics: Mapping | None) -> dict:
    """Topic of each role: ``topics``, else the side file's, else the one topic of the role's type, else the default."""
    present = {topic for topic, _ in connections}
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
        if roles.get(role) not in present:
            matches = [topic for topic, kind in connections if kind == msgtype]
            if len(matches) == 1:
                roles[role] = matches[0]
    return roles


def read_bag(path, topics: Mapping | None = None) -> BagRun:
    """Read a run's bag (MCAP or sqlite3) into a :class:`BagRun`.

    Topic roles are resolved from ``topics``, else the side file's ``topics``, else the message
    types present (the one Odometry topic is the odometry, and so on), else ``DEFAULT_TOPICS``.

    A bag that cannot be read is a :class:`BagError` naming it and the fault (no such directory, no or
    broken ``metadata.yaml``, unknown storage, a storage file missing or unreadable). An MCAP bag whose
    index is lost - its recorder was killed, so there is no ``metadata.yaml`` and no summary, or the
    file was cut short - is recovered: the intact messages are read record by record and
    ``BagRun.recovered`` says how many.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag directory")
    if not path.is_dir():
        raise BagError(f"{path} is a file, not a rosbag2 bag directory (give the directory holding metadata.yaml)")
    side = _read_side_file(path)
    config: dict = {}
    if (path / "metadata.yaml").is_file():
        info = _bag_metadata(path)
        storage = _check_storage(path, info)
        config = _read_custom_config(info)
        files = [path / name for name in info["relative_file_paths"]]
        listed = info.get("message_count")
        indexed = True
    else:
        files = sorted(path.glob("*.mcap"))
        if not files:
            raise BagError(f"{path}: not a rosbag2 bag directory (no metadata.yaml and no .mcap file)")
        storage, listed, indexed = "mcap", None, False
    if side and isinstance(side.get("config"), dict):
        config = {**config, **side["config"]}

    def collect(connections, messages) -> BagRun:
        roles = _resolve_roles(connections, side, topics)
        return _collect(path, messages, roles, config, storage, side)

    if indexed:
        try:
            return _read_indexed(path, collect)
        except _StorageDamaged as damage:
            if storage != "mcap":
                raise BagError(f"{path}: the {storage} storage cannot be read: {damage}") from None
            reason = str(damage)
    else:
        reason = "no metadata.yaml"
    # An MCAP bag without its index: read its intact records one by one.
    names = ", ".join(f.name for f in files)
    connections, intact, damaged = recover_mcap_messages(files)
    if not intact:
        raise BagError(f"{path}: no intact message could be recovered from {names} ({reason})")
    run = collect(connections, recovered_messages(files))
    of_listed = f" (metadata.yaml lists {listed})" if isinstance(listed, int) else ""
    cut = f"{damaged} of {len(files)} file(s) cut short or without a summary" if damaged else "no metadata.yaml"
    run.recovered = (
        f"recovered {intact} intact messages{of_listed} from {names}, read record by record without an index "
        f"({reason}; {cut}: was the recorder killed?)"
    )
    return run


def _collect(path: Path, messages, roles: dict, config: dict, storage: str, side: dict | None) -> BagRun:
    """Decode a bag's messages ``(topic, msgtype, receive_ns, cdr)`` into a :class:`BagRun`."""
    ts = typestore()
    topic_role = {v: k for k, v in roles.items()}
    t, xy, speed, yaw, odom_recv = [], [], [], [], []
    cmd_t, cmd_recv, cmds = [], [], []
    brain_stats, statuses, sim_stats = [], [], []
    camera = clock = 0
    last_clock = None
    counts: dict[str, int] = {}
    first_ns = last_ns = None
    for topic, msgtype, timestamp, raw in messages:
        role = topic_role.get(topic)
        if role is None:
            continue
        counts[topic] = counts.get(topic, 0) + 1
        first_ns = timestamp if first_ns is None else min(first_ns, timestamp)
        last_ns = timestamp if last_ns is None else max(last_ns, timestamp)
        if role == "camera":
            camera += 1  # no need to decode 900 kB images
            continue
        try:
            msg = ts.deserialize_cdr(raw, msgtype)
        except (*_DAMAGE, TypeError) as error:
            raise BagError(
                f"{path}: message {counts[topic]} on {topic} ({msgtype}) cannot be decoded: {error or type(error).__name__}"
            ) from None
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
        elif role == "stats" and msgtype == "std_msgs/msg/Float64MultiArray":
            row = _brain_stats_row(msg, topic)
            if row is not None:
                brain_stats.append(row)
        elif role == "status" and msgtype == "std_msgs/msg/String":
            statuses.append(msg.data.strip())
        elif role == "sim_stats" and msgtype == "std_msgs/msg/Float64MultiArray":
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
    """Topics, types and counts of a bag (what ``ros2 bag info`` shows), from its metadata.

    A missing, broken or damaged bag is a BagError naming it."""
    from rosbags.rosbag2 import Reader  # noqa: PLC0415 (rosbags: the optional 'ros' extra)
    from rosbags.rosbag2.errors import ReaderError  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

    path = Path(path)
    if not path.is_dir():
        raise BagError(f"{path}: no such bag directory")
    info = _bag_metadata(path)
    _check_storage(path, info)
    try:
        with Reader(path) as reader:
            return {
                "storage": info.get("storage_identifier"),
                "duration_s": reader.duration * 1e-9,
                "message_count": reader.message_count,
                "topics": {c.topic: {"type": c.msgtype, "count": c.msgcount} for c in reader.connections},
                "custom_data": info.get("custom_data") or {},
            }
    except (ReaderError, *_DAMAGE) as error:
        raise BagError(f"{path}: cannot be read: {' '.join(str(error).split())}") from None
