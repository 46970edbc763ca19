"""The nodes' parameters in ROS: declared from the schemas of `pilotnet_brain.config`, validated at start-up.

rclpy silently ignores parameters a node never declares, and checks neither NaN nor our ranges for a
dynamically typed parameter, so a typo in a YAML (`max_speed` for `max_v`) or `max_v: -5` would go
unnoticed. `declare_node_parameters` refuses both with one ConfigError line before declaring anything
(the nodes' `main` turns it into exit code 2; see ros/declare.py), and `load_node_parameters` checks a file
before anything starts (the launcher, the CLI). rclpy is imported inside the functions: the CLI reads
parameter files without ROS installed (then with `config.parse_yaml_parameters`, which finds the same sections).
"""

from __future__ import annotations

from pathlib import Path

from pilotnet_brain.brains.naming import brain_name
from pilotnet_brain.config import BRAIN_NODE, NodeSchema, read_parameter_file
from pilotnet_brain.errors import ConfigError


def rclpy_parameters(path: Path, node_name: str) -> dict:
    """{name: value} for the node from rclpy's own reader of parameter files (`/**` and namespaces as ROS)."""
    from rclpy.parameter import (  # noqa: PLC0415 - optional ROS dependency
        parameter_dict_from_yaml_file,
        parameter_value_to_python,
    )

    try:
        messages = parameter_dict_from_yaml_file(str(path), use_wildcard=True, target_nodes=[node_name])
    except (RuntimeError, KeyError, TypeError, AttributeError) as error:  # rclpy's ways of saying "not valid"
        raise ConfigError(f"{path}: not a valid ROS 2 parameter file for {node_name}: {error}") from None
    return {name: parameter_value_to_python(message.value) for name, message in messages.items()}


def _values_parser():
    try:
        import rclpy.parameter  # noqa: F401, PLC0415 - optional ROS dependency
    except ImportError:
        return None  # config.parse_yaml_parameters
    return rclpy_parameters


def load_node_parameters(path, schema: NodeSchema, node_name: str | None = None) -> dict:
    """The validated values a parameter file sets for the node, read by rclpy where it is importable."""
    return read_parameter_file(path, schema, node_name, parse=_values_parser())


def load_brain_parameters(path) -> dict:
    """brain_node parameters of a YAML (defaults filled in); unknown names and bad values raise ConfigError."""
    return BRAIN_NODE.resolve(load_node_parameters(path, BRAIN_NODE))


def brain_label(params: dict) -> str:
    """The brain's name in metrics (Brain.name, see brains.brain_name) for brain_node parameters."""
    return brain_name(
        params.get("brain", BRAIN_NODE["brain"].default), params.get("backend", BRAIN_NODE["backend"].default)
    )
