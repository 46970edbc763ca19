"""The learned brain: PilotNet through any inference backend (chosen by name, never by code)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pilotnet_brain.control import STOP, BrainOutput, Command, clamp_command
from pilotnet_brain.model.preprocessing import preprocess

#: The weights shipped in the package (trained with `make model`, see the README).
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "pilotnet_fp32.safetensors"


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
        from pilotnet_brain.runtime.registry import make_backend

        self.model_path = Path(model_path) if model_path else SHIPPED_MODEL
        # One inference thread by default: batch-1 PilotNet gains nothing from more, and the simulator
        # (or the rest of the robot) needs the other cores; oversubscribed, latency grows 100-fold.
        self.backend = make_backend(backend, self.model_path, threads=threads, **backend_options)
        self.name = "pilotnet" if backend == "torch_fp32" else f"pilotnet_{backend}"
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
            # A model that outputs NaN/inf must stop the car, not steer it.
            self.last_error = f"non-finite model output v={v} w={w}; commanding stop"
            return BrainOutput(STOP, inference)
        return BrainOutput(clamp_command(cmd, self.max_v, self.max_w), inference)
