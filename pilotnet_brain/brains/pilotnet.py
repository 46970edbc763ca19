"""The learned brain: PilotNet through any inference backend (chosen by name, never by code)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pilotnet_brain.brains.naming import brain_name
from pilotnet_brain.control import STOP, BrainOutput, Command, clamp_command
from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.model.preprocessing import preprocess
from pilotnet_brain.runtime.catalog import backend_spec
from pilotnet_brain.runtime.registry import make_backend

#: The weights shipped in the package (trained with `make model`, see the README).
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "pilotnet_fp32.safetensors"


def default_model(backend: str) -> Path:
    """The model file a backend runs when none is given: the shipped weights, for the backends that run the
    FP32 file; the others run a file built from them, which has to be named."""
    spec = backend_spec(backend)
    if spec.runs_shipped_weights:
        return SHIPPED_MODEL
    raise ModelFileError(
        f"backend {backend!r} needs a model file built by `pilotnet-brain optimize` "
        f"(named {spec.filename} there); give its path (--model, or model_path in a brain preset)"
    )


class PilotNetBrain:
    def __init__(
        self,
        model_path: str | Path | None = None,
        backend: str = "torch_fp32",
        max_v: float = 15.0,
        max_w: float = 3.0,
        threads: int | None = 1,
        **backend_options,
    ):
        self.model_path = Path(model_path) if model_path else default_model(backend)
        # One inference thread by default: batch-1 PilotNet gains nothing from more, and the simulator
        # (or the rest of the robot) needs the other cores; oversubscribed, latency grows 100-fold.
        self.backend = make_backend(backend, self.model_path, threads=threads, **backend_options)
        self.name = brain_name("pilotnet", backend)
        self.max_v, self.max_w = max_v, max_w
        self.last_error: str | None = None

    def reset(self) -> None:
        self.last_error = None

    def step(self, image_rgb: np.ndarray, stamp_s: float) -> BrainOutput:
        x = preprocess(image_rgb)[None]
        t0 = time.perf_counter()
        v, w = (float(a) for a in self.backend.predict(x)[0])
        inference = time.perf_counter() - t0
        cmd = Command(v, w)
        if not cmd.is_finite:
            # A model that outputs NaN/inf must stop the car, not steer it; last_error says why (the
            # simulator ends the run with "brain_error", brain_node logs it).
            self.last_error = f"model {self.model_path.name} gave a non-finite output (v={v}, w={w}); commanding stop"
            return BrainOutput(STOP, inference)
        return BrainOutput(clamp_command(cmd, self.max_v, self.max_w), inference)
