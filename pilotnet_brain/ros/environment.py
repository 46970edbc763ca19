"""The environment of the graph's processes: a private ROS_DOMAIN_ID and the Fast DDS transports
(config/fastdds.xml or a built-in set-up), and how to attach a tool to the graph."""

from __future__ import annotations

import os
import random

from pilotnet_brain import interfaces as topics
from pilotnet_brain.resources import config_path

# ROS 2's safe domain IDs on Linux are 0..101: higher ones put DDS ports into the kernel's ephemeral
# port range (32768-60999), where any outgoing socket may hold a port a participant needs ("About
# Domain ID", docs.ros.org). 0 is everyone's default, so private runs use 1..101.
PRIVATE_DOMAIN_IDS = range(1, 102)


def private_domain_id() -> int:
    return random.SystemRandom().choice(PRIVATE_DOMAIN_IDS)


#: Fast DDS built-in transport set-ups the graph can be given instead of the profile (graph-benchmark
#: measures them): name -> FASTDDS_BUILTIN_TRANSPORTS.
BUILTIN_TRANSPORTS = {"default": "DEFAULT", "large_data": "LARGE_DATA", "udp": "UDPv4"}
#: "profile" (config/fastdds.xml) is what every run uses unless told otherwise.
TRANSPORTS = ("profile", *BUILTIN_TRANSPORTS)


def fastdds_environment(transports: str = "profile") -> dict:
    """The variables that give a node's DDS participant its transports (one of TRANSPORTS)."""
    if transports == "profile":
        return {topics.FASTDDS_PROFILE_VARIABLE: str(config_path(topics.FASTDDS_PROFILE_FILE).resolve())}
    if transports in BUILTIN_TRANSPORTS:
        return {"FASTDDS_BUILTIN_TRANSPORTS": BUILTIN_TRANSPORTS[transports]}
    raise ValueError(f"unknown transports {transports!r} (one of {', '.join(TRANSPORTS)})")


def environment_with_transports(transports: str = "profile") -> dict:
    """os.environ with the caller's Fast DDS transport variables replaced by those of `transports`."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("FASTDDS_BUILTIN_TRANSPORTS", topics.FASTDDS_PROFILE_VARIABLE)
    }
    env.update(fastdds_environment(transports))
    return env


def ros_environment(domain_id: int | None = None, transports: str = "profile") -> dict:
    env = environment_with_transports(transports)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    elif "ROS_DOMAIN_ID" not in env:
        env["ROS_DOMAIN_ID"] = str(private_domain_id())
    return env


#: Variables that decide which DDS participants meet: a tool attached to the graph needs the same values.
TRANSPORT_VARIABLES = (
    "RMW_IMPLEMENTATION",
    topics.FASTDDS_PROFILE_VARIABLE,
    "FASTDDS_BUILTIN_TRANSPORTS",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_STATIC_PEERS",
    "ROS_LOCALHOST_ONLY",
    "CYCLONEDDS_URI",
)


def connection_lines(env: dict, topic: str) -> list:
    """What the launcher prints before starting a graph: its ROS_DOMAIN_ID (and where it comes from) with the
    transport variables its nodes get, then how to attach a tool (ros2 CLI, RViz, Foxglove) to it."""
    domain = env.get("ROS_DOMAIN_ID")
    if domain is None:
        origin, domain = "not set: ROS's default", "0"
    elif os.environ.get("ROS_DOMAIN_ID") == domain:
        origin = "from the environment"
    else:
        origin = "private to this run"
    transport = [f"{name}={env[name]}" for name in TRANSPORT_VARIABLES if env.get(name)]
    prefix = " ".join([f"ROS_DOMAIN_ID={domain}", *transport])
    first = f"ROS_DOMAIN_ID={domain} ({origin})"
    if transport:
        first += "; transport: " + " ".join(transport)
    return [
        first,
        f"attach a tool: {prefix} ros2 topic echo {topic}  (the same variables for rviz2, or for "
        "foxglove_bridge to watch in Foxglove)",
    ]
