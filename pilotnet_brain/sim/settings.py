"""Simulator settings from the ROS 2 parameters file config/simulation.yaml (one source of defaults)."""

from __future__ import annotations

from pathlib import Path

import yaml

from pilotnet_brain.errors import ConfigError
from pilotnet_brain.resources import config_path
from pilotnet_brain.sim.world import SimConfig

SIM_NODE = "sim_node"
#: Parameters of sim_node: name -> type. Anything else in the file is an error, not silently ignored.
SIM_PARAMETERS = {
    "circuit": str,
    "direction": str,
    "scale": float,
    "clock": str,
    "camera_rate": float,
    "physics_dt": float,
    "off_track_margin": float,
    "timeout": float,
    "latency": float,
}


def load_sim_parameters(path: str | Path | None = None) -> dict:
    """The sim_node parameters of a ROS 2 parameters YAML (default: the package's simulation.yaml)."""
    path = Path(path) if path is not None else config_path("simulation.yaml")
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read simulator config {path}: {error}") from error
    try:
        params = doc[SIM_NODE]["ros__parameters"]
    except (TypeError, KeyError):
        raise ConfigError(f"{path}: expected '{SIM_NODE}: ros__parameters: ...'") from None
    unknown = sorted(set(params) - set(SIM_PARAMETERS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown sim_node parameter(s) {', '.join(unknown)}; known: {', '.join(SIM_PARAMETERS)}"
        )
    out = {}
    for name, value in params.items():
        kind = SIM_PARAMETERS[name]
        try:
            out[name] = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: parameter {name}={value!r} is not a {kind.__name__}") from None
    return out


def sim_config_from_parameters(params: dict) -> SimConfig:
    """SimConfig from sim_node parameters (missing ones keep SimConfig's defaults)."""
    kwargs = {}
    mapping = {
        "clock": "clock",
        "camera_rate": "camera_rate_hz",
        "physics_dt": "physics_dt_s",
        "off_track_margin": "off_track_margin_m",
    }
    for src, dst in mapping.items():
        if src in params:
            kwargs[dst] = params[src]
    if params.get("timeout", 0.0) > 0:
        kwargs["timeout_s"] = params["timeout"]
    if params.get("latency", -1.0) >= 0:
        kwargs["latency_s"] = params["latency"]
    return SimConfig(**kwargs)
