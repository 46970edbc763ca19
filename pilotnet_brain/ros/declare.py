"""Declaring a node's parameters from its schema (`pilotnet_brain.config`), for the node modules only."""

from __future__ import annotations

import math

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from pilotnet_brain.config import NodeSchema, Parameter

INT64_MAX = 2**63 - 1


def parameter_descriptor(parameter: Parameter):
    """The ParameterDescriptor of a schema entry: description, range, read-only (read once at start-up).

    Dynamic typing, so that `timeout:=60` (an integer) for a float parameter reaches the validation instead
    of rclpy's InvalidParameterTypeException; the type is then checked by the schema.
    """

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
