"""The nodes' parameters in ROS: declared from the schemas of `pilotnet_brain.config`, validated at start-up.

rclpy silently ignores parameters a node never declares, and checks neither NaN nor our ranges for a
dynamically typed parameter, so a typo in a YAML (`max_speed` for `max_v`) or `max_v: -5` would go
unnoticed. `declare_node_parameters` refuses both with one ConfigError line before declaring anything
(the nodes' `main` turns it into exit code 2), and `load_node_parameters` checks a file before anything
starts (the launcher, the CLI). rclpy is imported inside the functions: the CLI reads parameter files
without ROS installed (then with `config.parse_yaml_parameters`, which finds the same sections).
"""

from __future__ import annotations

import math
from pathlib import Path

from pilotnet_brain.config import NodeSchema, Parameter, read_parameter_file
from pilotnet_brain.errors import ConfigError

INT64_MAX = 2**63 - 1


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


def parameter_descriptor(parameter: Parameter):
    """The ParameterDescriptor of a schema entry: description, range, read-only (read once at start-up).

    Dynamic typing, so that `timeout:=60` (an integer) for a float parameter reaches the validation instead
    of rclpy's InvalidParameterTypeException; the type is then checked by the schema.
    """
    from rcl_interfaces.msg import (  # noqa: PLC0415 - optional ROS dependency
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
    )

    descriptor = ParameterDescriptor(
        name=parameter.name,
        description=parameter.doc,
        additional_constraints=parameter.allowed(),
        read_only=True,
        dynamic_typing=True,
    )
    if parameter.min is not None or parameter.max is not None:
        if parameter.type is float:
            low = -math.inf if parameter.min is None else float(parameter.min)
            high = math.inf if parameter.max is None else float(parameter.max)
            descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
        elif parameter.type is int:
            low = -INT64_MAX - 1 if parameter.min is None else int(parameter.min)
            high = INT64_MAX if parameter.max is None else int(parameter.max)
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    return descriptor


def declare_node_parameters(node, schema: NodeSchema) -> dict:
    """Declare the schema's parameters on the node; return {name: value}, validated and typed.

    The node's overrides (parameter files, `-p name:=value`, parameter_overrides) are checked first, so a
    bad value is one ConfigError naming the parameter, the value and the range, not an rclpy exception.
    """
    where = f"node {node.get_name()}"
    overrides = getattr(node, "_parameter_overrides", None) or {}  # rclpy keeps them there until declared
    schema.validate({name: parameter.value for name, parameter in overrides.items()}, where)
    for parameter in schema:
        node.declare_parameter(parameter.name, parameter.default, parameter_descriptor(parameter))
    return schema.resolve({p.name: node.get_parameter(p.name).value for p in schema}, where)
