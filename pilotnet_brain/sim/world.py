"""Embedded circuit simulator: stands in for Gazebo (no ROS in this layer).

`World` holds one circuit, its signed-distance map, the camera renderer and the car. `run_episode`
drives a brain (called in this process) around it with one of the two clocks of `sim.clock`:

- lock-step: as fast as possible. Each camera frame goes to the brain; its command takes effect
  `latency` simulated seconds later (by default the brain's measured wall time, or a fixed value for
  bit-exact reproducibility), so a slow brain still drives worse, deterministically for a fixed latency.
- real-time: physics paced by the wall clock, camera at a fixed rate; the brain runs in its own thread
  and always takes the newest frame, so a slow brain sees stale frames, as in Gazebo.

The timing rules themselves live in `sim.clock.EpisodeClock`, shared with the ROS sim_node.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from pilotnet_brain.config import SIM_NODE
from pilotnet_brain.control import Brain, Command
from pilotnet_brain.sim.camera import Appearance, CameraModel, Renderer
from pilotnet_brain.sim.circuits import Circuit, widen_road
from pilotnet_brain.sim.clock import CLOCKS, EpisodeClock, FrameHook, InProcessBrain, Reply
from pilotnet_brain.sim.conditions import Conditions
from pilotnet_brain.sim.record import RunRecord
from pilotnet_brain.sim.track_map import TrackMap
from pilotnet_brain.sim.vehicle import VehicleLimits, VehicleState, step_vehicle

#: BehaviorMetrics' per-circuit time-outs (s) in its Gazebo worlds.
BEHAVIOR_METRICS_TIMEOUTS_S = {
    "simple_circuit": 75.0,
    "nurburgring": 88.0,
    "montmelo": 122.0,
    "many_curves": 151.0,
    "montreal": 248.0,
}
#: For circuits without a BehaviorMetrics time-out: the lap at this average speed.
SLOWEST_ACCEPTED_SPEED_MPS = 4.0


@dataclass
class SimConfig:
    # Defaults: sim_node's parameters (config.SIM_NODE); sim.settings maps the parameters to these fields.
    clock: str = SIM_NODE["clock"].default
    camera_rate_hz: float = SIM_NODE["camera_rate"].default
    physics_dt_s: float = SIM_NODE["physics_dt"].default
    off_track_margin_m: float = SIM_NODE["off_track_margin"].default
    timeout_s: float | None = None  # None: BehaviorMetrics' time-out, or length / 4 m/s
    latency_s: float | None = None  # lock-step only; None = the brain's measured wall time
    reference_spacing_m: float = 1.0
    lap_overshoot_m: float = 2.0  # drive a little past the line so the last checkpoint is reached
    limits: VehicleLimits = field(default_factory=VehicleLimits)
    conditions: Conditions = field(default_factory=Conditions)  # rendering and latency conditions (sim.conditions)
    seed: int = SIM_NODE["seed"].default  # everything random in the simulator: noise, shadows, latency spikes

    def __post_init__(self):
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}; choose one of {', '.join(CLOCKS)}")
        if not (self.camera_rate_hz > 0 and self.physics_dt_s > 0):
            raise ValueError("camera_rate_hz and physics_dt_s must be positive")
        if not isinstance(self.conditions, Conditions):
            raise ValueError(f"conditions must be a sim.conditions.Conditions, not {self.conditions!r}")


@lru_cache(maxsize=8)
def _cached_track_map(key, centerline_bytes: bytes, n: int, half_width_m: float) -> TrackMap:
    centerline = np.frombuffer(centerline_bytes, dtype=np.float64).reshape(n, 2)
    return TrackMap.from_centerline(centerline, half_width_m)


def track_map_for(circuit: Circuit) -> TrackMap:
    """The circuit's distance map, built once per process (both directions share it: |d| is the same)."""
    pts = circuit.centerline
    if circuit.direction == "cw":
        pts = pts[::-1]  # canonical ccw order, so both directions hit the same cache entry
    pts = np.ascontiguousarray(pts, dtype=np.float64)
    key = (circuit.name, circuit.source, round(circuit.length_m, 3))
    return _cached_track_map(key, pts.tobytes(), len(pts), float(circuit.half_width_m))


def default_timeout_s(circuit: Circuit) -> float:
    if circuit.source == "builtin" and circuit.name in BEHAVIOR_METRICS_TIMEOUTS_S:
        return BEHAVIOR_METRICS_TIMEOUTS_S[circuit.name]
    return circuit.length_m / SLOWEST_ACCEPTED_SPEED_MPS


class World:
    """One circuit, its camera and the car; advances by physics steps. Knows nothing of brains or clocks.

    The camera, the appearance and the road's width come from `config.conditions` (camera and appearance
    unless given); `seed` (default `config.seed`) seeds the renderer's noise and shadows."""

    def __init__(
        self,
        circuit: Circuit,
        config: SimConfig | None = None,
        camera: CameraModel | None = None,
        appearance: Appearance | None = None,
        seed: int | None = None,
    ):
        self.config = config or SimConfig()
        conditions = self.config.conditions
        self.circuit = circuit = widen_road(circuit, conditions.parameters.road_width_scale)
        self.track = track_map_for(circuit)
        self.renderer = Renderer(
            self.track,
            camera or conditions.camera(),
            appearance or conditions.appearance(),
            seed=self.config.seed if seed is None else seed,
        )
        self._centerline = circuit.centerline
        self.reset()

    def reset(self, lateral_offset_m: float = 0.0, yaw_offset_rad: float = 0.0) -> None:
        x, y, yaw = self.circuit.start_pose()
        x -= math.sin(yaw) * lateral_offset_m
        y += math.cos(yaw) * lateral_offset_m
        self.state = VehicleState(x, y, yaw + yaw_offset_rad)
        self.sim_time_s = 0.0
        self._index = 0  # nearest center-line point, tracked locally
        self._progress_pts = 0  # unwrapped index progress along the lap
        self.off_track_events = 0

    # --- queries -------------------------------------------------------------------------------
    @property
    def lateral_offset_m(self) -> float:
        """Signed distance of the car from the center line (m, + = left of the circuit's ccw sense)."""
        return self.track.signed_distance(self.state.x, self.state.y)

    @property
    def is_off_track(self) -> bool:
        return abs(self.lateral_offset_m) > self.circuit.half_width_m + self.config.off_track_margin_m

    @property
    def progress_m(self) -> float:
        return self._progress_pts * self.circuit.spacing_m

    @property
    def lap_completed(self) -> bool:
        return self.progress_m >= self.circuit.length_m + self.config.lap_overshoot_m

    def render(self, out: np.ndarray | None = None) -> np.ndarray:
        s = self.state
        return self.renderer.render(s.x, s.y, s.yaw, out, speed_mps=s.v, yaw_rate_rps=s.w)

    # --- dynamics ------------------------------------------------------------------------------
    def step(self, command: Command, dt: float | None = None) -> None:
        dt = self.config.physics_dt_s if dt is None else dt
        self.state = step_vehicle(self.state, command.v, command.w, dt, self.config.limits)
        self.sim_time_s += dt
        self._update_progress()

    def _update_progress(self) -> None:
        # Search a window around the last nearest point: O(1) per step, and never jumps across the
        # circuit where two parts of the track come close.
        n = len(self._centerline)
        offsets = np.arange(-20, 41)
        idx = (self._index + offsets) % n
        d2 = np.sum((self._centerline[idx] - (self.state.x, self.state.y)) ** 2, axis=1)
        best = int(np.argmin(d2))
        self._index = int(idx[best])
        self._progress_pts += int(offsets[best])


@dataclass
class EpisodeLog:
    """Everything a run produced, beyond the metrics record: commands for plots and analysis."""

    record: RunRecord
    command_t: np.ndarray
    commands: np.ndarray  # (N, 2) v, w as applied
    speed: np.ndarray  # (M,) car speed at each odometry sample
    yaw: np.ndarray  # (M,)
    brain_error: str | None = None  # what the brain reported when the run ended by "brain_error"


class _Recorder:
    def __init__(self, world: World):
        self.world = world
        self.t: list[float] = []
        self.xy: list[tuple[float, float]] = []
        self.speed: list[float] = []
        self.yaw: list[float] = []
        self.command_t: list[float] = []
        self.commands: list[tuple[float, float]] = []
        self.iteration_wall_s: list[float] = []
        self.inference_s: list[float] = []
        self.frame_count = 0
        self.sample()

    def sample(self) -> None:
        s = self.world.state
        self.t.append(self.world.sim_time_s)
        self.xy.append((s.x, s.y))
        self.speed.append(s.v)
        self.yaw.append(s.yaw)

    def reply(self, t: float, reply: Reply) -> None:
        self.iteration_wall_s.append(reply.latency_s)
        self.inference_s.append(reply.inference_s if reply.inference_s is not None else reply.latency_s)

    def command(self, t: float, cmd: Command) -> None:
        self.command_t.append(t)
        self.commands.append((cmd.v, cmd.w))

    def finish(self, brain_name: str, wall_time_s: float, end_reason: str) -> EpisodeLog:
        w = self.world
        record = RunRecord(
            circuit=w.circuit.name,
            direction=w.circuit.direction,
            brain=brain_name,
            t=np.asarray(self.t),
            xy=np.asarray(self.xy).reshape(-1, 2),
            reference=w.circuit.reference_points(w.config.reference_spacing_m),
            reference_spacing_m=w.config.reference_spacing_m,
            iteration_wall_s=np.asarray(self.iteration_wall_s),
            inference_s=np.asarray(self.inference_s),
            frame_count=self.frame_count,
            off_track_events=w.off_track_events,
            wall_time_s=wall_time_s,
            end_reason=end_reason,
            condition=w.config.conditions.label,
        )
        return EpisodeLog(
            record,
            np.asarray(self.command_t),
            np.asarray(self.commands).reshape(-1, 2),
            np.asarray(self.speed),
            np.asarray(self.yaw),
        )


def run_episode(
    world: World, brain: Brain, frame_hook: FrameHook | None = None, progress: Callable[[float], None] | None = None
) -> EpisodeLog:
    """Drive `brain` on `world` until the lap is done, the car leaves the road, or time runs out.

    The brain is called in this process; the timing (lock-step or real-time, `world.config.clock`) is
    `clock.EpisodeClock`'s. frame_hook(t, frame, state, command) -> command lets a caller see every
    frame with the brain's command and return the command to apply (dataset recording injects
    perturbations this way). progress(fraction_of_lap) is called every 100 physics steps.
    """
    world.reset()
    brain.reset()
    cfg = world.config
    clock = EpisodeClock(cfg, cfg.timeout_s or default_timeout_s(world.circuit))
    rec = _Recorder(world)

    def on_step(reason):
        rec.sample()
        if progress is not None and clock.steps % 100 == 0:
            progress(world.progress_m / world.circuit.length_m)

    reason = clock.run(world, InProcessBrain(brain, frame_hook), rec.reply, rec.command, on_step)
    rec.frame_count = clock.frames
    log = rec.finish(brain.name, time.perf_counter() - clock.wall0, reason)
    log.brain_error = clock.brain_error
    return log
