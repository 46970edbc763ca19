"""Brains: camera image in, velocity command out. `make_brain(name)` builds one by name."""

from __future__ import annotations

from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.brains.naming import brain_name
from pilotnet_brain.brains.pilotnet import PilotNetBrain
from pilotnet_brain.control import STOP, Brain, BrainOutput, Command, clamp_command

BRAIN_NAMES = ("explicit", "pilotnet")


def make_brain(name: str, **options) -> Brain:
    """Build a brain by name; unknown names list the valid ones."""
    if name == "explicit":
        return ExplicitBrain(**options)
    if name == "pilotnet":
        return PilotNetBrain(**options)
    raise ValueError(f"unknown brain {name!r}; choose one of: {', '.join(BRAIN_NAMES)}")


__all__ = ["Brain", "BrainOutput", "Command", "STOP", "clamp_command", "make_brain", "brain_name", "BRAIN_NAMES"]
