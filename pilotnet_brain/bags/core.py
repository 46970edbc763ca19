"""rosbag2 bags of driving runs: write, read, and score them again, with the pure-Python ``rosbags``.

No rclpy here: a bag recorded by the ``bag_recorder`` node (or written by :class:`BagWriter` from
synthetic messages) can be read and scored on any machine with ``pip install rosbags``.

A run's bag is a normal rosbag2 directory (``metadata.yaml`` + one ``.mcap`` or ``.db3`` file, readable
by ``ros2 bag info``) plus ``pilotnet_brain.json`` next to them::

    {"format": "pilotnet_brain.run/1",
     "config":  {"circuit": ..., "direction": ..., "brain": ..., "scale": ..., "clock": ...,
                 "reference_spacing_m": ..., "brain_config": {...}, ...},
     "metrics": {... compute_metrics(...) of the run, as recomputed from the bag ...},
     "topics":  {"odom": "/F1ROS/odom", ...}}

The same configuration is also stored in ``metadata.yaml``'s ``custom_data`` under the key
``pilotnet_brain.config`` (a JSON string), so a bag that lost its side file still knows its circuit.

Metrics are recomputed from the bag alone by :func:`metrics_from_bag`:

* odometry (``nav_msgs/Odometry``): ``header.stamp`` (simulated time) and ``pose.pose.position`` give
  ``RunRecord.t`` and ``RunRecord.xy``; twist gives the speed for the plots;
* brain stats: per-iteration wall time and inference time (see :func:`decode_stats`);
* episode status: end reason, off-track events, camera frame count and wall time of the run
  (see :func:`decode_status`); without one, the camera messages in the bag and the bag's time span;
* the circuit and its reference ("perfect lap") from the configuration, via
  :func:`run_record_from_arrays` — THE function that turns recorded arrays into a ``RunRecord``
  (metrics_node should use it too, so a bag and the live run score identically).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from pilotnet_brain.evaluation.metrics import compute_metrics
from pilotnet_brain.interfaces import BRAIN_STATS_FIELDS, DEFAULT_TOPICS, DEFAULT_TYPES, SIM_STATS_FIELDS
from pilotnet_brain.sim.record import RunRecord

__all__ = [
    "SIDE_FILE",
    "CUSTOM_DATA_KEY",
    "FORMAT",
    "DEFAULT_TOPICS",
    "DEFAULT_TYPES",
    "STORAGE_IDS",
    "typestore",
    "BagWriter",
    "BagRun",
    "decode_stats",
    "decode_status",
    "read_bag",
    "read_side_file",
    "write_side_file",
    "run_record_from_arrays",
    "run_record_from_bag",
    "metrics_from_bag",
    "bag_summary",
    "is_bag",
]

SIDE_FILE = "pilotnet_brain.json"
CUSTOM_DATA_KEY = "pilotnet_brain.config"
FORMAT = "pilotnet_brain.run/1"

#: Storage names accepted by the recorder's ``storage`` parameter and ``BagWriter``.
STORAGE_IDS = ("mcap", "sqlite3")

_TYPESTORE = None


def typestore():
    """The rosbags type store (ROS 2 Kilted message definitions), created once."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import Stores, get_typestore

        _TYPESTORE = get_typestore(Stores.ROS2_KILTED)
    return _TYPESTORE


def _storage_plugin(storage: str):
    from rosbags.rosbag2 import StoragePlugin

    storage = (storage or "mcap").lower()
    if storage not in STORAGE_IDS:
        raise ValueError(f"unknown bag storage {storage!r}; use one of {', '.join(STORAGE_IDS)}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_json(value):
    """Replace NaN/inf by None recursively (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


# --------------------------------------------------------------------------- writing


class BagWriter:
    """A rosbag2 bag being written: MCAP (default) or sqlite3, version 9 metadata.

    ``add_topic(topic, msgtype)`` registers a connection with its full message definition and
    RIHS01 hash (so ``ros2 bag info``/``ros2 bag play`` know the type); ``write_raw`` stores CDR bytes
    as received from DDS; ``write_msg`` serialises a rosbags message object first.  ``close`` writes
    ``metadata.yaml`` (with ``custom_data``) and is safe to call twice.
    """

    def __init__(self, path, storage: str = "mcap", config: Mapping | None = None):
        from rosbags.rosbag2 import Writer

        self.path = Path(path)
        self.storage = (storage or "mcap").lower()
        self.config = dict(config or {})
        self._writer = Writer(self.path, version=9, storage_plugin=_storage_plugin(self.storage))
        self._writer.set_custom_data(CUSTOM_DATA_KEY, json.dumps(_clean_json(self.config), default=_json_default))
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    def set_config(self, config: Mapping) -> None:
        """Replace the configuration stored in custom_data (before ``close``)."""
        self.config = dict(config)
        self._writer.set_custom_data(CUSTOM_DATA_KEY, json.dumps(_clean_json(self.config), default=_json_default))

    def add_topic(self, topic: str, msgtype: str, qos_profiles=()) -> None:
        if topic in self._connections:
            return
        ts = typestore()
        if msgtype not in ts.types:
            raise ValueError(f"message type {msgtype!r} is unknown to the rosbags Kilted type store")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=ts, offered_qos_profiles=list(qos_profiles)
        )
        self.counts[topic] = 0

    def has_topic(self, topic: str) -> bool:
        return topic in self._connections

    def write_raw(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        if self.closed:
            return
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        self.counts[topic] += 1

    def write_msg(self, topic: str, timestamp_ns: int, msg) -> None:
        conn = self._connections[topic]
        self.write_raw(topic, timestamp_ns, typestore().serialize_cdr(msg, conn.msgtype))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def write_side_file(
    bag_path, config: Mapping, metrics: Mapping | None, topics: Mapping | None = None, extra: Mapping | None = None
) -> Path:
    """Write ``pilotnet_brain.json`` into the bag directory; return its path."""
    data = {
        "format": FORMAT,
        "config": dict(config),
        "metrics": dict(metrics) if metrics is not None else None,
        "topics": dict(topics or DEFAULT_TOPICS),
    }
    if extra:
        data.update(extra)
    path = Path(bag_path) / SIDE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(_clean_json(data), indent=2, default=_json_default, allow_nan=False) + "\n", encoding="utf-8"
    )
    tmp.replace(path)
    return path


def read_side_file(bag_path) -> dict | None:
    path = Path(bag_path) / SIDE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def is_bag(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "metadata.yaml").is_file()


# --------------------------------------------------------------------------- decoding helpers


def _stamp_s(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _msg_json(msg) -> object | None:
    """The JSON payload of a std_msgs/String message, or None."""
    text = getattr(msg, "data", None)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


_ITER_KEYS = ("iteration_wall_s", "iteration_s", "iteration_time_s", "wall_s", "iteration")
_INFER_KEYS = ("inference_s", "inference_time_s", "forward_s", "inference")
_ITER_MS_KEYS = ("iteration_ms", "iteration_time_ms", "iteration_wall_ms")
_INFER_MS_KEYS = ("inference_ms", "inference_time_ms")


def _first_number(d: Mapping, keys, scale=1.0):
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            return float(v) * scale
    return None


def decode_stats(msgtype: str, msg) -> tuple[float | None, float | None, dict | None]:
    """One brain-stats message -> ``(iteration_wall_s, inference_s, payload)``.

    Accepted forms (the brain node publishes one per iteration):

    * ``std_msgs/String`` holding JSON: ``{"iteration_wall_s": s, "inference_s": s, ...}``
      (also ``iteration_s``/``iteration_ms``, ``inference_ms``); other keys are kept in ``payload``;
    * ``std_msgs/Float64MultiArray`` (what brain_node publishes): fields named by ``layout.dim[0].label``
      or else ``BRAIN_STATS_FIELDS`` (``inference_ms``, ``iteration_ms``, ...);
    * ``diagnostic_msgs``-like or unknown types: ignored (None, None, None).

    An inference time missing from the message falls back to the iteration time, as in the simulator.
    """
    iteration = inference = None
    payload = None
    if msgtype.endswith("/String"):
        payload = _msg_json(msg)
        if isinstance(payload, dict):
            iteration = _first_number(payload, _ITER_KEYS)
            if iteration is None:
                iteration = _first_number(payload, _ITER_MS_KEYS, 1e-3)
            inference = _first_number(payload, _INFER_KEYS)
            if inference is None:
                inference = _first_number(payload, _INFER_MS_KEYS, 1e-3)
        else:
            payload = None
    elif msgtype.endswith("MultiArray"):
        payload = multiarray_dict(msg, BRAIN_STATS_FIELDS)
        iteration = _first_number(payload, _ITER_KEYS)
        if iteration is None:
            iteration = _first_number(payload, _ITER_MS_KEYS, 1e-3)
        inference = _first_number(payload, _INFER_KEYS)
        if inference is None:
            inference = _first_number(payload, _INFER_MS_KEYS, 1e-3)
    if iteration is not None and inference is None:
        inference = iteration
    return iteration, inference, payload if isinstance(payload, dict) else None


def multiarray_dict(msg, fields) -> dict:
    """A ``*MultiArray`` message as {field: float}: names from ``layout.dim[0].label`` ("a,b,c") if set,
    else ``fields``; values beyond the names are ignored."""
    names = tuple(fields)
    try:
        dims = msg.layout.dim
        if len(dims) and dims[0].label and "," in dims[0].label:
            names = tuple(n.strip() for n in dims[0].label.split(","))
    except AttributeError:
        pass
    data = np.asarray(msg.data, dtype=float).ravel()
    return {name: float(v) for name, v in zip(names, data)}


def decode_status(msgtype: str, msg) -> dict | None:
    """One episode-status message -> dict (``state``/``end_reason``, ``off_track_events``, ...).

    ``std_msgs/String`` with JSON (a dict is returned as is) or a bare word such as ``running`` or
    ``lap_completed`` (returned as ``{"state": word}``).
    """
    if not msgtype.endswith("/String"):
        return None
    payload = _msg_json(msg)
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, str) and payload.strip():
        return {"state": payload.strip()}
    return None


_RUNNING_STATES = {"", "running", "starting", "ready", "waiting", "started", "driving"}


def status_end_reason(status: Mapping | None) -> str | None:
    """The end reason a status dict announces, or None while the run goes on."""
    if not status:
        return None
    for key in ("end_reason", "reason"):
        v = status.get(key)
        if isinstance(v, str) and v and v not in _RUNNING_STATES:
            return v
    v = status.get("state", status.get("status"))
    if isinstance(v, str) and v.lower() not in _RUNNING_STATES and v.lower() not in ("finished", "done", "ended"):
        return v
    if isinstance(v, str) and v.lower() in ("finished", "done", "ended"):
        return str(status.get("end_reason") or v)
    if status.get("done") is True or status.get("finished") is True:
        return str(status.get("end_reason") or "finished")
    return None


# --------------------------------------------------------------------------- reading


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
    # brain stats
    iteration_wall_s: np.ndarray
    inference_s: np.ndarray
    stats_payloads: list = field(default_factory=list)
    stats_rows: list = field(default_factory=list)  # raw Float64MultiArray data of each brain-stats message
    # status
    statuses: list = field(default_factory=list)
    sim_stats: list = field(default_factory=list)  # sim_node's stats, oldest first (the last is final)
    camera_count: int = 0
    clock_count: int = 0
    message_counts: dict = field(default_factory=dict)
    duration_s: float = 0.0
    side_file: dict | None = None

    @property
    def final_status(self) -> dict:
        """The last status that announced an end, else the last status, else {}."""
        for s in reversed(self.statuses):
            if status_end_reason(s):
                return s
        return self.statuses[-1] if self.statuses else {}


def _bag_metadata(path) -> dict:
    """``rosbag2_bagfile_information`` of ``metadata.yaml``."""
    import yaml

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
    from rosbags.rosbag2 import Reader

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
        iters, infers, payloads, statuses, sim_stats, stats_rows = [], [], [], [], [], []
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
            elif role == "stats":
                if conn.msgtype.endswith("MultiArray"):
                    stats_rows.append(tuple(float(v) for v in msg.data))
                it, inf, payload = decode_stats(conn.msgtype, msg)
                if it is not None:
                    iters.append(it)
                    infers.append(inf)
                if payload is not None:
                    payloads.append(payload)
            elif role == "status":
                s = decode_status(conn.msgtype, msg)
                if s is not None:
                    statuses.append(s)
            elif role == "sim_stats" and conn.msgtype.endswith("MultiArray"):
                sim_stats.append(multiarray_dict(msg, SIM_STATS_FIELDS))
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
        iteration_wall_s=np.asarray(iters, dtype=float),
        inference_s=np.asarray(infers, dtype=float),
        stats_payloads=payloads,
        stats_rows=stats_rows,
        statuses=statuses,
        sim_stats=sim_stats,
        camera_count=camera,
        clock_count=clock,
        message_counts=counts,
        duration_s=(last_ns - first_ns) * 1e-9 if first_ns is not None else 0.0,
        side_file=side,
    )


# --------------------------------------------------------------------------- run record / metrics


def run_record_from_arrays(
    *,
    circuit: str,
    direction: str,
    brain: str,
    t,
    xy,
    iteration_wall_s=(),
    inference_s=(),
    frame_count: int = 0,
    off_track_events: int = 0,
    wall_time_s: float = 0.0,
    end_reason: str = "",
    scale: float = 1.0,
    reference_spacing_m: float = 1.0,
    circuit_obj=None,
) -> RunRecord:
    """THE construction of a ``RunRecord`` from recorded arrays, shared by metrics_node (live, via
    ``metrics_node.record_from_arrays``) and ``analyze`` (from a bag), so both score a run alike.

    ``circuit`` is a built-in name or CSV path (loaded with ``scale`` and ``direction``, unless a
    ``circuits.Circuit`` is passed as ``circuit_obj``); the reference is its center line resampled every
    ``reference_spacing_m`` metres, exactly as the embedded simulator's records.  ``t`` are simulated
    seconds (odometry header stamps), ``xy`` the odometry positions; samples are put in time order
    (stable sort).  Brain timings in seconds.
    """
    if circuit_obj is None:
        from pilotnet_brain.sim.circuits import load_circuit

        circuit_obj = load_circuit(circuit, direction=direction, scale=float(scale))
    t = np.asarray(t, dtype=float).reshape(-1)
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    order = np.argsort(t, kind="stable")
    return RunRecord(
        circuit=circuit_obj.name,
        direction=direction,
        brain=str(brain),
        t=t[order],
        xy=xy[order],
        reference=circuit_obj.reference_points(float(reference_spacing_m)),
        reference_spacing_m=float(reference_spacing_m),
        iteration_wall_s=np.asarray(iteration_wall_s, dtype=float).reshape(-1),
        inference_s=np.asarray(inference_s, dtype=float).reshape(-1),
        frame_count=int(frame_count),
        off_track_events=int(off_track_events),
        wall_time_s=float(wall_time_s),
        end_reason=str(end_reason or ""),
    )


def _number(d: Mapping, *keys, default=None):
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
    return default


def _brain_timings(run: BagRun) -> tuple[np.ndarray, np.ndarray]:
    """(iteration_s, inference_s) exactly as metrics_node unpacks them (``brain_stats_arrays``)."""
    if run.stats_rows and not _labelled_differently(run):
        width = len(BRAIN_STATS_FIELDS)
        a = np.asarray([r[:width] for r in run.stats_rows if len(r) >= width], dtype=float).reshape(-1, width)
        i_iter, i_inf = BRAIN_STATS_FIELDS.index("iteration_ms"), BRAIN_STATS_FIELDS.index("inference_ms")
        return a[:, i_iter] / 1e3, a[:, i_inf] / 1e3  # the same operations as metrics_node
    return run.iteration_wall_s, run.inference_s


def _labelled_differently(run: BagRun) -> bool:
    """True when the stats messages name their fields and the names are not BRAIN_STATS_FIELDS."""
    return any(set(p) != set(BRAIN_STATS_FIELDS) for p in run.stats_payloads[:1]) if run.stats_payloads else False


def run_record_from_bag(run: BagRun | str | os.PathLike) -> RunRecord:
    """The ``RunRecord`` of a bag, built as metrics_node builds it from the same messages: odometry,
    brain stats, the final sim_node stats (frame count, wall time) and the episode status; circuit,
    direction, scale, brain label and reference spacing from the bag's metadata."""
    if not isinstance(run, BagRun):
        run = read_bag(run)
    cfg = run.config
    missing = [k for k in ("circuit", "direction") if not cfg.get(k)]
    if missing:
        raise ValueError(
            f"{run.path}: the bag's metadata does not say the run's {' and '.join(missing)} "
            f"(no {SIDE_FILE} and no custom_data {CUSTOM_DATA_KEY!r})"
        )
    sim = run.sim_stats[-1] if run.sim_stats else {}
    end_reason = status_end_reason(run.final_status) or str(cfg.get("end_reason") or "")
    iteration_s, inference_s = _brain_timings(run)
    frame_count = _number(sim, "frame_count", default=len(iteration_s))
    wall = _number(sim, "wall_time_s", default=0.0)
    return run_record_from_arrays(
        circuit=str(cfg["circuit"]),
        direction=str(cfg["direction"]),
        brain=str(cfg.get("brain") or "unknown"),
        t=run.t,
        xy=run.xy,
        iteration_wall_s=iteration_s,
        inference_s=inference_s,
        frame_count=int(frame_count),
        off_track_events=1 if end_reason == "off_track" else 0,
        wall_time_s=float(wall),
        end_reason=end_reason,
        scale=float(cfg.get("scale", 1.0) or 1.0),
        reference_spacing_m=float(cfg.get("reference_spacing_m", cfg.get("reference_spacing", 1.0)) or 1.0),
    )


def metrics_from_bag(path) -> tuple[dict, RunRecord, BagRun]:
    """Recompute every metric of a run from its bag: ``(metrics, record, bag_run)``."""
    run = read_bag(path)
    record = run_record_from_bag(run)
    return compute_metrics(record), record, run


def bag_summary(path) -> dict:
    """Topics, types and counts of a bag (what ``ros2 bag info`` shows), from its metadata."""
    from rosbags.rosbag2 import Reader

    info = _bag_metadata(path)
    with Reader(Path(path)) as reader:
        return {
            "storage": info.get("storage_identifier"),
            "duration_s": reader.duration * 1e-9,
            "message_count": reader.message_count,
            "topics": {c.topic: {"type": c.msgtype, "count": c.msgcount} for c in reader.connections},
            "custom_data": info.get("custom_data") or {},
        }


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# --------------------------------------------------------------------------- analyze


def plot_time_series(run: BagRun, metrics: Mapping, path) -> str:
    """Speed (odometry) and commands (v, w) over simulated time, one PNG."""
    from pilotnet_brain.evaluation.plots import _new_figure, _save

    fig = _new_figure((9, 6))
    ax1 = fig.add_subplot(2, 1, 1)
    t0 = run.t[0] if len(run.t) else 0.0
    if len(run.t):
        ax1.plot(run.t - t0, run.speed, color="tab:blue", lw=1.2, label="odometry speed")
    if len(run.command_t):
        ax1.step(run.command_t - t0, run.commands[:, 0], where="post", color="tab:orange", lw=1, label="command v")
    ax1.set_ylabel("m/s")
    ax1.grid(True, alpha=0.3)
    ax1.legend(loc="best", fontsize=8)
    ax1.set_title(f"{metrics.get('circuit')} ({metrics.get('direction')}) - {metrics.get('brain')}: speed and commands")
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    if len(run.command_t):
        ax2.step(run.command_t - t0, run.commands[:, 1], where="post", color="tab:green", lw=1, label="command w")
    ax2.set_ylabel("rad/s")
    ax2.set_xlabel("simulated time (s)")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def analyze_bags(paths: Iterable, out_dir=None) -> list[dict]:
    """Recompute the metrics of each bag; with ``out_dir``, write per-run JSON, trajectory and
    time-series PNGs and a summary table/chart.  Returns the metrics rows."""
    from pilotnet_brain.evaluation.metrics import write_metrics_json

    rows = []
    out = Path(out_dir) if out_dir is not None else None
    for p in paths:
        metrics, record, run = metrics_from_bag(p)
        metrics = dict(metrics)
        metrics["bag"] = str(Path(p))
        rows.append(metrics)
        if out is not None:
            from pilotnet_brain.evaluation.plots import plot_trajectory
            from pilotnet_brain.sim.circuits import load_circuit

            out.mkdir(parents=True, exist_ok=True)
            name = slug(f"{record.circuit}_{record.direction}_{record.brain}")
            if sum(1 for r in rows if slug(f"{r['circuit']}_{r['direction']}_{r['brain']}") == name) > 1:
                name = slug(f"{name}_{Path(p).name}")
            write_metrics_json(metrics, out / f"{name}.json")
            circuit = load_circuit(
                run.config["circuit"],
                direction=run.config["direction"],
                scale=float(run.config.get("scale", 1.0) or 1.0),
            )
            plot_trajectory(
                record, metrics, out / f"{name}.png", circuit_xy=circuit.centerline, half_width_m=circuit.half_width_m
            )
            plot_time_series(run, metrics, out / f"{name}_timeseries.png")
    return rows
