"""Brains: camera image in, velocity command out. `make_brain(name)` builds one by name."""

from __future__ import annotations

from pilotnet_brain.control import STOP, Brain, BrainOutput, Command, clamp_command

BRAIN_NAMES = ("explicit", "pilotnet")


def brain_name(brain: str, backend: str = "torch_fp32") -> str:
    """The name a brain goes by in metrics, file names and logs (``Brain.name``): ``explicit``, ``pilotnet``
    on the default torch_fp32 backend, ``pilotnet_<backend>`` on any other."""
    if brain == "pilotnet":
        return "pilotnet" if backend == "torch_fp32" else f"pilotnet_{backend}"
    return str(brain)


def make_brain(name: str, **options) -> Brain:
    """Build a brain by name; unknown names list the valid ones."""
    if name == "explicit":
        from pilotnet_brain.brains.explicit import ExplicitBrain

        return ExplicitBrain(**options)
    if name == "pilotnet":
        from pilotnet_brain.brains.pilotnet import PilotNetBrain

        return PilotNetBrain(**options)
    raise ValueError(f"unknown brain {name!r}; choose one of: {', '.join(BRAIN_NAMES)}")


__all__ = ["Brain", "BrainOutput", "Command", "STOP", "clamp_command", "make_brain", "brain_name", "BRAIN_NAMES"]
