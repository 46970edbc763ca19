"""The package's exceptions, in one place: every layer raises these, the CLI turns them into one line."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration file or parameter that is missing, malformed or out of range."""


class CircuitError(ValueError):
    """A circuit could not be built: bad name, bad parameter or bad track file."""


class ModelFileError(ValueError):
    """A model file that is missing, corrupt, not a PilotNet, or of another shape."""


class ImageError(ValueError):
    """A frame that is not a 480x640 RGB uint8 image."""


class BackendUnavailable(RuntimeError):
    """The runtime a backend needs (a package, a GPU, TensorRT) is missing; the message says what to install."""


class RecordingError(RuntimeError):
    """A dataset recording that could not be completed; what was recorded is kept, marked incomplete."""


class BagError(ValueError):
    """A rosbag2 bag that is missing, damaged or not a run's bag; the message names the bag and the fault."""
