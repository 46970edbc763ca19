"""SimConfig from sim_node's parameters (the schema `pilotnet_brain.config.SIM_NODE`, one source of defaults)."""

from __future__ import annotations

from collections.abc import Mapping

from pilotnet_brain.config import SIM_NODE, show_value
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.sim.conditions import parse_conditions
from pilotnet_brain.sim.world import SimConfig

#: sim_node parameter -> SimConfig field, for the parameters copied as they are.
SIM_CONFIG_FIELDS = {
    "clock": "clock",
    "camera_rate": "camera_rate_hz",
    "physics_dt": "physics_dt_s",
    "off_track_margin": "off_track_margin_m",
    "seed": "seed",
}


def sim_config_from_parameters(params: Mapping, where: str | None = None) -> SimConfig:
    """SimConfig from sim_node parameters, validated by the schema (missing ones take its defaults).

    timeout 0 = the circuit's time-out (SimConfig.timeout_s None); latency < 0 = the brain's measured
    time (latency_s None); conditions is parsed by sim.conditions.parse_conditions. Node-only parameters
    (topics, start-up) are accepted and not used.
    """
    p = SIM_NODE.resolve(params, where)
    try:
        conditions = parse_conditions(p["conditions"])
    except ValueError as error:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}conditions={show_value(p['conditions'])}: {error}") from None
    return SimConfig(
        **{field: p[name] for name, field in SIM_CONFIG_FIELDS.items()},
        timeout_s=p["timeout"] if p["timeout"] > 0 else None,
        latency_s=p["latency"] if p["latency"] >= 0 else None,
        conditions=conditions,
    )
