"""Write a driving run as a rosbag2 bag with the pure-Python ``rosbags`` (no rclpy), and its side file.

A run's bag is a normal rosbag2 directory (``metadata.yaml`` + one ``.mcap`` or ``.db3`` file, readable
by ``ros2 bag info``) plus ``pilotnet_brain.json`` next to them::

    {"format": "pilotnet_brain.run/1",
     "config":  {"circuit": ..., "direction": ..., "brain": ..., "scale": ..., "clock": ...,
                 "reference_spacing_m": ..., "brain_config": {...}, ...},
     "metrics": {... compute_metrics(...) of the run, as recomputed from the bag ...},
     "topics":  {"odom": "/F1ROS/odom", ...}}

The same configuration is also stored in ``metadata.yaml``'s ``custom_data`` under the key
``pilotnet_brain.config`` (a JSON string), so a bag that lost its side file still knows its circuit.
``rosbags`` is the ``ros`` extra: it is imported when a bag is written or read, not with this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from pilotnet_brain.interfaces import DEFAULT_TOPICS
from pilotnet_brain.jsonio import dumps_strict, write_json_atomic

__all__ = [
    "CUSTOM_DATA_KEY",
    "FORMAT",
    "SIDE_FILE",
    "STORAGE_IDS",
    "BagWriter",
    "is_bag",
    "offered_qos",
    "read_side_file",
    "typestore",
    "write_side_file",
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
        from rosbags.typesys import Stores, get_typestore  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

        _TYPESTORE = get_typestore(Stores.ROS2_KILTED)
    return _TYPESTORE


#: RMW_DURATION_INFINITE in ns, as rclpy reports an unset deadline, lifespan or lease duration.
INFINITE_NS = 2**63 - 1


def offered_qos(
    *,
    history: int,
    depth: int,
    reliability: int,
    durability: int,
    deadline_ns: int = INFINITE_NS,
    lifespan_ns: int = INFINITE_NS,
    liveliness: int = 1,
    liveliness_lease_duration_ns: int = INFINITE_NS,
    avoid_ros_namespace_conventions: bool = False,
):
    """One publisher's QoS as a bag's ``offered_qos_profiles`` entry (rosbags ``Qos``).

    Takes the rmw enum values (rclpy's HistoryPolicy, ReliabilityPolicy, ... share them with rosbags)
    and durations in ns, so this module needs no rclpy; rosbag2 stores what the publishers offered
    (``ros2 bag play`` republishes with it), and so does the recorder.
    """
    from rosbags.interfaces import (  # noqa: PLC0415 (rosbags: the optional 'ros' extra)
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    def duration(ns: int) -> QosTime:
        return QosTime(*divmod(int(ns), 1_000_000_000))

    return Qos(
        history=QosHistory(int(history)),
        depth=int(depth),
        reliability=QosReliability(int(reliability)),
        durability=QosDurability(int(durability)),
        deadline=duration(deadline_ns),
        lifespan=duration(lifespan_ns),
        liveliness=QosLiveliness(int(liveliness)),
        liveliness_lease_duration=duration(liveliness_lease_duration_ns),
        avoid_ros_namespace_conventions=bool(avoid_ros_namespace_conventions),
    )


def _storage_plugin(storage: str):
    from rosbags.rosbag2 import StoragePlugin  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

    storage = (storage or "mcap").lower()
    if storage not in STORAGE_IDS:
        raise ValueError(f"unknown bag storage {storage!r}; use one of {', '.join(STORAGE_IDS)}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


class BagWriter:
    """A rosbag2 bag being written: MCAP (default) or sqlite3, version 9 metadata.

    ``add_topic(topic, msgtype)`` registers a connection with its full message definition and
    RIHS01 hash (so ``ros2 bag info``/``ros2 bag play`` know the type); ``write_raw`` stores CDR bytes
    as received from DDS; ``write_msg`` serialises a rosbags message object first.  ``close`` writes
    ``metadata.yaml`` (with ``custom_data``) and is safe to call twice.  A bag is never overwritten:
    an existing ``path`` is a FileExistsError.
    """

    def __init__(self, path, storage: str = "mcap", config: Mapping | None = None):
        from rosbags.rosbag2 import Writer  # noqa: PLC0415 (rosbags: the optional 'ros' extra)

        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} already exists (a bag is never overwritten; choose a new directory)")
        self.storage = (storage or "mcap").lower()
        self.config = dict(config or {})
        self._writer = Writer(self.path, version=9, storage_plugin=_storage_plugin(self.storage))
        self._writer.set_custom_data(CUSTOM_DATA_KEY, dumps_strict(self.config, indent=None))
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    def set_config(self, config: Mapping) -> None:
        """Replace the configuration stored in custom_data (before ``close``)."""
        self.config = dict(config)
        self._writer.set_custom_data(CUSTOM_DATA_KEY, dumps_strict(self.config, indent=None))

    def add_topic(self, topic: str, msgtype: str, qos_profiles=()) -> None:
        """Register ``topic``; ``qos_profiles``: what its publishers offered (``offered_qos``), as rosbag2 does."""
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
    """Write ``pilotnet_brain.json`` into the bag directory (strict JSON, atomically); return its path."""
    data = {
        "format": FORMAT,
        "config": dict(config),
        "metrics": dict(metrics) if metrics is not None else None,
        "topics": dict(topics or DEFAULT_TOPICS),
    }
    if extra:
        data.update(extra)
    return write_json_atomic(data, Path(bag_path) / SIDE_FILE)


def read_side_file(bag_path) -> dict | None:
    path = Path(bag_path) / SIDE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def is_bag(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "metadata.yaml").is_file()
