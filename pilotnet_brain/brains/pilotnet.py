"""The learned brain: PilotNet through any inference backend (chosen by name, never by code)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from pilotnet_brain.brains.camera_yaw import MIN_CORRECTION_RAD, CameraYawEstimator, view_correction
from pilotnet_brain.brains.naming import brain_name
from pilotnet_brain.control import STOP, BrainOutput, Command, clamp_command
from pilotnet_brain.errors import ModelFileError
from pilotnet_brain.model.preprocessing import preprocess
from pilotnet_brain.runtime.catalog import backend_spec
from pilotnet_brain.runtime.registry import make_backend
from pilotnet_brain.sim.camera import CameraModel

#: A new yaw estimate replaces the one in use when they differ by this much (a correction that
#: flickers by hundredths of a degree would only add noise).
YAW_UPDATE_RAD = math.radians(0.1)
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
        camera_yaw_deg: float = 0.0,
        estimate_camera_yaw: bool = True,
        **backend_options,
    ):
        self.model_path = Path(model_path) if model_path else default_model(backend)
        # One inference thread by default: batch-1 PilotNet gains nothing from more, and the simulator
        # (or the rest of the robot) needs the other cores; oversubscribed, latency grows 100-fold.
        self.backend = make_backend(backend, self.model_path, threads=threads, **backend_options)
        self.name = brain_name("pilotnet", backend)
        self.max_v, self.max_w = max_v, max_w
        self.last_error: str | None = None
        self.last_notice: str | None = None  # news for the node's log (the camera yaw it now corrects)
        # The camera the network was trained with; its yaw on this car is calibrated (camera_yaw_deg) and,
        # unless told not to, estimated while driving (brains.camera_yaw).
        self.camera = CameraModel()
        self.calibrated_yaw_rad = math.radians(camera_yaw_deg)
        self.yaw_estimator = (
            CameraYawEstimator(self.camera, initial_yaw_rad=self.calibrated_yaw_rad) if estimate_camera_yaw else None
        )
        self.defer_camera_yaw = False  # see update_camera_yaw
        self.reset()

    def reset(self) -> None:
        self.last_error = None
        self._last_w = 0.0
        self._corrected_yaw_rad = 0.0
        self._view = None
        if self.yaw_estimator is not None:
            self.yaw_estimator.reset()
        self._correct_view(self.calibrated_yaw_rad)

    @property
    def camera_yaw_rad(self) -> float:
        """The camera yaw (rad, left positive) the frames are turned back by; 0 while none is applied."""
        return self._corrected_yaw_rad

    def _correct_view(self, yaw_rad: float) -> None:
        """Turn frames back by yaw_rad from now on (below MIN_CORRECTION_RAD: leave them as they are)."""
        if abs(yaw_rad) < MIN_CORRECTION_RAD:
            yaw_rad = 0.0
        if yaw_rad == self._corrected_yaw_rad:
            return
        self._corrected_yaw_rad = yaw_rad
        self._view = view_correction(self.camera, yaw_rad) if yaw_rad else None
        self.last_notice = (
            f"camera yaw {math.degrees(yaw_rad):+.2f} deg: frames turned back before inference"
            if yaw_rad
            else "camera yaw below 0.5 deg: frames used as they are"
        )

    def step(self, image_rgb: np.ndarray, stamp_s: float) -> BrainOutput:
        x = preprocess(image_rgb, self._view)[None]
        t0 = time.perf_counter()
        v, w = (float(a) for a in self.backend.predict(x)[0])
        inference = time.perf_counter() - t0
        cmd = Command(v, w)
        if not cmd.is_finite:
            # A model that outputs NaN/inf must stop the car, not steer it; last_error says why (the
            # simulator ends the run with "brain_error", brain_node logs it).
            self.last_error = f"model {self.model_path.name} gave a non-finite output (v={v}, w={w}); commanding stop"
            cmd = STOP
        else:
            cmd = clamp_command(cmd, self.max_v, self.max_w)
        self._last_w = cmd.w
        if not self.defer_camera_yaw:
            self.update_camera_yaw(image_rgb)
        return BrainOutput(cmd, inference)

    def update_camera_yaw(self, image_rgb: np.ndarray) -> None:
        """Sample the frame just answered for the camera-yaw estimate; the next frames use the new estimate.

        step() calls it last unless `defer_camera_yaw`: brain_node defers it until the command is out, as
        the sampling (~0.9 ms, every 5th frame on straights) does not belong on the camera->command path.
        Either way frame k is sampled after its command and before frame k+1: the same commands."""
        if self.yaw_estimator is None:
            return
        self.yaw_estimator.observe(image_rgb, self._last_w)
        if abs(self.yaw_estimator.yaw_rad - self._corrected_yaw_rad) >= YAW_UPDATE_RAD:
            self._correct_view(self.yaw_estimator.yaw_rad)
