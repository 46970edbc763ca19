"""PilotNet's architecture facts that need no torch (ONNX and LiteRT backends check files against them)."""

from __future__ import annotations

ARCHITECTURE = "pilotnet-v1"
FLATTENED_FEATURES = 1152
