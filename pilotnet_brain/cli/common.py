"""What every command group shares: list options, the simulator options and their checked SimConfig."""

from __future__ import annotations

import argparse

from pilotnet_brain.config import SIM_NODE
from pilotnet_brain.resources import config_path
from pilotnet_brain.ros.params import load_node_parameters
from pilotnet_brain.sim.settings import sim_config_from_parameters


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def directions(value: str) -> list[str]:
    dirs = ["ccw", "cw"] if value == "both" else split_list(value)
    bad = [d for d in dirs if d not in ("ccw", "cw")]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown direction(s) {', '.join(bad)}; use ccw, cw, or both")
    return dirs


def add_sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="ROS 2 parameters YAML for the simulator (default: config/simulation.yaml)")
    p.add_argument("--clock", choices=SIM_NODE["clock"].choices, help="simulation clock (default from config)")
    p.add_argument("--camera-rate", type=float, help="camera frames per second")
    p.add_argument(
        "--latency-ms",
        type=float,
        help="lockstep: fixed command latency in ms (default: the brain's measured time per frame)",
    )
    p.add_argument("--timeout", type=float, help="simulated seconds before a run is stopped")


def sim_config_from_args(args):
    """SimConfig from the --config file (sim_node's parameters) and the options, checked by config.SIM_NODE."""
    params = load_node_parameters(args.config or config_path("simulation.yaml"), SIM_NODE)
    options = {"clock": args.clock, "camera_rate": args.camera_rate, "timeout": args.timeout}
    if args.latency_ms is not None:
        options["latency"] = args.latency_ms / 1000.0
    params.update({name: value for name, value in options.items() if value is not None})
    return sim_config_from_parameters(params, "simulator settings")
