"""The episode clock: the timing rules of a simulated run, written once for every way a brain is reached.

`EpisodeClock.run(world, link)` advances a `World` by physics steps until the episode ends, renders the
camera on a fixed grid of simulated time and hands each frame to the brain through a `BrainLink`:

- `InProcessBrain` (here): calls a `control.Brain` directly and measures its wall time (`drive`, `record`).
- sim_node's DDS link (pilotnet_brain/ros/sim_node.py): publishes the frame and waits for the command.

Rules (both clocks):
- physics advances by `config.physics_dt_s` steps; a frame is rendered at the first physics step at or
  after each frame time (0, 1/camera_rate, 2/camera_rate, ... accumulated; 1e-9 s tolerance);
- the episode ends at the first step where `end_reason` says so (a brain error, off the road, lap
  completed, time-out); a brain error is an answer that carries `Reply.error` (the brain's `last_error`).

lock-step (`config.clock == "lockstep"`), as fast as possible:
- each frame is handed over with `link.ask`, which blocks until the brain answers it;
- the answer takes effect `latency` simulated seconds after its frame - the link's measured wall latency,
  or `config.latency_s` when set (then a run is bit-for-bit reproducible) - on the first physics step at
  or after that time; answers take effect in the order their frames were taken;
- no answer (`ask` returns None: the link gave up waiting) keeps the command in force.

Latency spikes (the `latency_spike` condition, `config.conditions`): a seeded fraction of the frames
(lock-step) or answers (real-time), drawn in order from `config.seed`, take effect `extra` simulated
seconds later than they would; answers still take effect in order, so a late one holds back those after it.

real-time (`config.clock == "realtime"`), physics paced by the wall clock:
- frames are offered with `link.post` (never blocks); the brain runs on its own (a thread, another
  process) and always takes the newest frame, so a slow brain drives on stale frames, as in Gazebo;
- answers that arrived since the last step (`link.poll`) take effect at the next physics step, newest last
  (a spiked answer, and those after it, `extra` simulated seconds later);
- after each step the clock sleeps until the wall clock has caught up with simulated time.

Nothing here knows about ROS: a link is any object with the `BrainLink` methods.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from pilotnet_brain.control import STOP, Brain, Command

if TYPE_CHECKING:
    from pilotnet_brain.sim.vehicle import VehicleState
    from pilotnet_brain.sim.world import World

#: Tolerance (s) when comparing simulated times on the physics grid (sums of floats drift).
TIME_EPS_S = 1e-9
CLOCKS = ("lockstep", "realtime")
END_REASONS = ("brain_error", "off_track", "lap_completed", "timeout")

FrameHook = Callable[[float, np.ndarray, "VehicleState", Command], Command]


def end_reason(world: World, timeout_s: float, brain_error: str | None = None) -> str | None:
    """Why the episode ends after the step just taken, or None. Counts the off-track event it reports.

    brain_error: the error a brain reported (its commands are stops from then on), which ends the run."""
    if brain_error:
        return "brain_error"
    if world.is_off_track:
        world.off_track_events += 1
        return "off_track"
    if world.lap_completed:
        return "lap_completed"
    if world.sim_time_s >= timeout_s:
        return "timeout"
    return None


@dataclass(frozen=True)
class Reply:
    """A brain's answer to one frame."""

    command: Command
    latency_s: float | None = None  # wall s from hand-over to answer (lock-step delay when latency_s is unset)
    inference_s: float | None = None  # the brain's own forward-pass time, when it reports one
    error: str | None = None  # what went wrong in the brain (its `last_error`): the episode ends


class BrainLink(Protocol):
    """How the clock reaches a brain. Lock-step uses `ask`; real-time uses start/post/poll/stop."""

    def ask(self, frame: np.ndarray, t: float, state: VehicleState) -> Reply | None:
        """Hand over the frame taken at sim time t and wait for the brain's answer (None: no answer in time).

        `frame` is the clock's render buffer: valid only until ask returns."""

    def start(self) -> None:
        """Real-time: get ready to take frames (e.g. start the brain's thread)."""

    def post(self, frame: np.ndarray, t: float, state: VehicleState) -> None:
        """Real-time: offer the newest frame (a fresh array the clock never touches again); never blocks."""

    def poll(self) -> list[Reply]:
        """Real-time: the answers that arrived since the last poll, oldest first."""

    def stop(self) -> None:
        """Real-time: the episode is over; stop taking frames."""


class InProcessBrain:
    """A `control.Brain` called in this process: the answer's latency is the wall time of `brain.step`.

    frame_hook(t, frame, state, command) -> command sees every frame with the brain's command and
    returns the command to apply (dataset recording injects perturbations this way); its own time is
    not part of the latency."""

    def __init__(self, brain: Brain, frame_hook: FrameHook | None = None):
        self.brain = brain
        self.frame_hook = frame_hook
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.brain.name

    def ask(self, frame, t, state) -> Reply:
        t0 = time.perf_counter()
        out = self.brain.step(frame, t)
        latency = time.perf_counter() - t0
        cmd = out.command
        if self.frame_hook is not None:
            cmd = self.frame_hook(t, frame, state, cmd)
        return Reply(cmd, latency, out.inference_s, getattr(self.brain, "last_error", None))

    # --- real-time: the brain runs in its own thread on the newest frame -----------------------------
    def start(self) -> None:
        self._newest = None  # (frame, t, state)
        self._seq = 0
        self._replies: list[Reply] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="brain", daemon=True)
        self._thread.start()

    def post(self, frame, t, state) -> None:
        with self._cond:
            self._newest = (frame, t, state)
            self._seq += 1
            self._cond.notify_all()

    def poll(self) -> list[Reply]:
        with self._cond:
            replies, self._replies = self._replies, []
        return replies

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _loop(self) -> None:
        seen = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._seq != seen)
                if self._stopping:
                    return
                (frame, t, state), seen = self._newest, self._seq
            reply = self.ask(frame, t, state)  # the frame is the clock's fresh array: no copy needed
            with self._cond:
                self._replies.append(reply)


class EpisodeClock:
    """Runs one episode on a world with a brain link, by the rules in this module's docstring.

    Callbacks (all optional, called on the clock's thread):
    - on_reply(t, reply): the brain answered (lock-step: at its frame's time t; real-time: at the step
      where the answer is picked up);
    - on_apply(t, command): the command takes effect from the step starting at sim time t;
    - on_step(reason): after each physics step and its end check (reason None while running).

    After `run`: `wall0` (perf_counter at the start of the loop), `frames`, `steps`, `replies`,
    `missed` (lock-step frames without an answer), `latency_spikes` (answers made late by the
    latency_spike condition) and `brain_error` (the first `Reply.error`, or None).
    """

    def __init__(self, config, timeout_s: float, stop: threading.Event | None = None):
        if config.clock not in CLOCKS:
            raise ValueError(f"unknown clock {config.clock!r}")
        self.config = config
        self.timeout_s = float(timeout_s)
        self._stop = stop if stop is not None else threading.Event()
        self.wall0 = time.perf_counter()
        self.frames = self.steps = self.replies = self.missed = 0
        self.brain_error: str | None = None
        self._spikes = config.conditions.latency_spikes(config.seed)

    @property
    def latency_spikes(self) -> int:
        return self._spikes.count if self._spikes is not None else 0

    def _extra_latency_s(self) -> float:
        return self._spikes.next() if self._spikes is not None else 0.0

    def run(
        self,
        world: World,
        link: BrainLink,
        on_reply: Callable[[float, Reply], None] | None = None,
        on_apply: Callable[[float, Command], None] | None = None,
        on_step: Callable[[str | None], None] | None = None,
    ) -> str | None:
        """Drive from the world's current state to the end; the end reason, or None if `stop` was set."""
        run = self._run_realtime if self.config.clock == "realtime" else self._run_lockstep
        return run(world, link, on_reply or _ignore, on_apply or _ignore, on_step or _ignore)

    def _run_lockstep(self, world, link, on_reply, on_apply, on_step):
        cfg = self.config
        frame_period = 1.0 / cfg.camera_rate_hz
        frame = np.empty((world.renderer.camera.height, world.renderer.camera.width, 3), np.uint8)
        applied = STOP
        pending: deque[tuple[float, Command]] = deque()  # (apply at sim time, command), in frame order
        next_frame_t = 0.0
        self.wall0 = time.perf_counter()
        while not self._stop.is_set():
            t = world.sim_time_s
            if t >= next_frame_t - TIME_EPS_S:
                world.render(frame)
                self.frames += 1
                reply = link.ask(frame, t, world.state)
                extra = self._extra_latency_s()  # drawn for every frame, so the spiked frames depend on the seed only
                if self._stop.is_set():
                    return None
                if reply is None:
                    self.missed += 1  # keep the command in force
                else:
                    self.replies += 1
                    self._note_error(t, reply)
                    on_reply(t, reply)
                    latency = reply.latency_s if cfg.latency_s is None else cfg.latency_s
                    pending.append((t + latency + extra, reply.command))
                next_frame_t += frame_period
            while pending and pending[0][0] <= t + TIME_EPS_S:
                applied = pending.popleft()[1]
                on_apply(t, applied)
            reason = self._step(world, applied, on_step)
            if reason:
                return reason
        return None

    def _run_realtime(self, world, link, on_reply, on_apply, on_step):
        cfg = self.config
        frame_period = 1.0 / cfg.camera_rate_hz
        applied = STOP
        next_frame_t = 0.0
        late: deque[tuple[float, Command]] = deque()  # latency spikes: (apply at sim time, command), in order
        link.start()
        try:
            self.wall0 = wall0 = time.perf_counter()
            while not self._stop.is_set():
                t = world.sim_time_s
                if t >= next_frame_t - TIME_EPS_S:
                    link.post(world.render(), t, world.state)  # a fresh array per frame: the brain may hold it
                    self.frames += 1
                    next_frame_t += frame_period
                for reply in link.poll():
                    self.replies += 1
                    self._note_error(t, reply)
                    on_reply(t, reply)
                    extra = self._extra_latency_s()
                    if extra or late:
                        late.append((t + extra, reply.command))
                    else:
                        applied = reply.command
                        on_apply(t, applied)
                while late and late[0][0] <= t + TIME_EPS_S:
                    applied = late.popleft()[1]
                    on_apply(t, applied)
                reason = self._step(world, applied, on_step)
                if reason:
                    return reason
                ahead = world.sim_time_s - (time.perf_counter() - wall0)  # pace physics by the wall clock
                if ahead > 0:
                    self._stop.wait(ahead)
            return None
        finally:
            link.stop()

    def _note_error(self, t: float, reply: Reply) -> None:
        if reply.error and self.brain_error is None:
            self.brain_error = f"{reply.error} (at t={t:.2f} s)"

    def _step(self, world, command: Command, on_step) -> str | None:
        world.step(command)
        self.steps += 1
        reason = end_reason(world, self.timeout_s, self.brain_error)
        on_step(reason)
        return reason


def _ignore(*_args) -> None:
    pass
