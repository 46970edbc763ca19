"""ROS 2 parameters files (YAML) for the nodes, read without ROS: validation with clear errors.

rclpy silently ignores parameters a node never declares, so a typo in a YAML (`max_speed` for `max_v`)
would go unnoticed. The nodes check their overrides against what they declare, and the launcher checks
the files before starting anything, with `load_node_parameters`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pilotnet_brain.errors import ConfigError

#: Parameters every rclpy node has.
BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")


def load_node_parameters(path, node_name: str, known) -> dict:
    """The parameters for `node_name` in a ROS 2 parameters file (`/**` entries included).

    Unknown names raise ConfigError naming the file, the node and the known names; values keep their
    YAML types. A file with no section for the node gives {}.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read parameters file {path}: {error}") from error
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected '<node name>: ros__parameters: ...' at the top level")
    params = {}
    for key in ("/**", node_name, "/" + node_name):
        section = doc.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ConfigError(f"{path}: expected '{key}: ros__parameters: {{...}}'")
        params.update(section["ros__parameters"])
    check_parameter_names(params, known, f"{path}: {node_name}")
    return params


def check_parameter_names(names, known, where: str) -> None:
    unknown = sorted(set(names) - set(known) - set(BUILTIN_PARAMETERS))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")


def check_node_overrides(node, known) -> None:
    """Raise ConfigError if the node was given (params file / -p) parameters it does not declare."""
    overrides = getattr(node, "_parameter_overrides", None) or {}
    check_parameter_names(overrides.keys(), known, f"node {node.get_name()}")
