"""A brain from brain_node's parameters (the schema `config.BRAIN_NODE`), without ROS.

brain_node (ros/brain_node.py) and the in-process runs of `pilotnet-brain sweep` build their brain here,
from the same preset files (config/brains/*.yaml), so both drive the same brain.
"""

from __future__ import annotations

import math
from pathlib import Path

from pilotnet_brain.brains import make_brain
from pilotnet_brain.config import BRAIN_NODE, read_parameter_file
from pilotnet_brain.control import Brain
from pilotnet_brain.sim.camera import CameraModel


def brain_parameters_from_file(path) -> dict:
    """Every brain_node parameter for a parameter file (defaults filled in), read by config's one reader;
    unknown names and bad values raise ConfigError."""
    return BRAIN_NODE.resolve(read_parameter_file(Path(path), BRAIN_NODE))


def build_brain(params: dict, logger=None) -> Brain:
    """The Brain for the parameters (may raise BackendUnavailable, ModelFileError, ValueError).

    logger: anything with .warning (rclpy's or logging's), told when a parameter is ignored."""

    name = params["brain"]
    if name == "pilotnet":
        options = {
            "backend": params["backend"],
            "model_path": params["model_path"] or None,
            "max_v": float(params["max_v"]),
            "max_w": float(params["max_w"]),
            "camera_yaw_deg": float(params["camera_yaw_deg"]),
            "estimate_camera_yaw": bool(params["estimate_camera_yaw"]),
        }
        options["threads"] = int(params["threads"]) or None  # None: the backend's own default
        if params["backend"].startswith("torch"):
            options["device"] = params["device"]
        elif params["device"] != "cpu":
            raise ValueError(f"device {params['device']!r} applies to torch backends, not {params['backend']!r}")
        return make_brain("pilotnet", **options)
    if params["device"] not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {params['device']!r}; choose cpu or cuda")
    if params["device"] == "cuda" and logger is not None:
        logger.warning(f"device 'cuda' ignored: the {name} brain runs on the CPU")
    return make_brain(name, camera=CameraModel(yaw_rad=math.radians(float(params["camera_yaw_deg"]))))
