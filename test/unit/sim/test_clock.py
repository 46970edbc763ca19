"""sim.clock: the timing rules of an episode, checked on a tiny fake world with scripted brain links."""

import random
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from pilotnet_brain.control import STOP, BrainOutput, Command
from pilotnet_brain.sim.clock import EpisodeClock, InProcessBrain, Reply, end_reason
from pilotnet_brain.sim.world import SimConfig

DT = 0.01
RATE = 30.0


class FakeWorld:
    """Only what the clock touches: a 2x3 camera, a sim clock advanced like World's, and the commands stepped."""

    def __init__(self, config=None, off_track_at=None, lap_at=None):
        self.config = config or SimConfig()
        self.renderer = SimpleNamespace(camera=SimpleNamespace(height=2, width=3))
        self.sim_time_s = 0.0
        self.state = SimpleNamespace(t=0.0)
        self.off_track_events = 0
        self.stepped = []  # (sim time at the start of the step, command)
        self.renders = 0
        self._off_track_at, self._lap_at = off_track_at, lap_at

    def render(self, out=None):
        self.renders += 1
        frame = np.full((2, 3, 3), self.renders % 256, np.uint8)
        if out is None:
            return frame
        out[...] = frame
        return out

    def step(self, command, dt=None):
        self.stepped.append((self.sim_time_s, command))
        self.sim_time_s += self.config.physics_dt_s  # accumulated, as World does
        self.state = SimpleNamespace(t=self.sim_time_s)

    @property
    def is_off_track(self):
        return self._off_track_at is not None and self.sim_time_s >= self._off_track_at - 1e-9

    @property
    def lap_completed(self):
        return self._lap_at is not None and self.sim_time_s >= self._lap_at - 1e-9


class ScriptedLink:
    """Lock-step link: frame k gets command v=k after the k-th scripted latency (None: no answer)."""

    def __init__(self, latencies):
        self.latencies = latencies
        self.asked = []  # (t, state.t, frame value)

    def ask(self, frame, t, state):
        k = len(self.asked)
        self.asked.append((t, state.t, int(frame[0, 0, 0])))
        latency = self.latencies(k) if callable(self.latencies) else self.latencies
        return None if latency is None else Reply(Command(float(k), 0.0), latency)


def expected_frame_times(duration_s, rate=RATE, dt=DT):
    """The first step of the 10 ms grid at or after each frame time k/rate, for steps before duration_s."""
    steps = np.arange(round(duration_s / dt)) * dt
    out = []
    for k in range(int(duration_s * rate) + 2):
        at = steps[steps >= k / rate - 1e-9]
        if len(at):
            out.append(at[0])
    return sorted(set(out))


def first_step_at_or_after(t):
    return np.ceil(round(t / DT, 6)) * DT


def run(world, link, timeout_s, **callbacks):
    clock = EpisodeClock(world.config, timeout_s)
    reason = clock.run(world, link, **callbacks)
    return clock, reason


# --- lock-step ------------------------------------------------------------------------------------------
def test_lockstep_renders_on_the_first_step_at_or_after_each_frame_time():
    world = FakeWorld(SimConfig(latency_s=0.0))
    link = ScriptedLink(0.0)
    clock, reason = run(world, link, timeout_s=1.0)
    assert reason == "timeout"
    t = np.array([a[0] for a in link.asked])
    np.testing.assert_allclose(t, expected_frame_times(1.0), atol=1e-9)
    assert t[:5] == pytest.approx([0.0, 0.04, 0.07, 0.10, 0.14])
    assert clock.frames == len(t) == 30 and world.renders == 30
    assert clock.steps == len(world.stepped) == 100
    assert [a[1] for a in link.asked] == pytest.approx(t)  # the state handed over is the frame's
    assert [a[2] for a in link.asked] == list(range(1, 31))  # a frame rendered for each ask


@pytest.mark.parametrize("latency", [0.0, 0.025, 0.04, 0.1])
def test_lockstep_fixed_latency_applies_each_command_on_the_first_step_after_frame_plus_latency(latency):
    world = FakeWorld(SimConfig(latency_s=latency))
    link = ScriptedLink(5.0)  # the link's own latency is ignored when latency_s is fixed
    applied = []
    run(world, link, timeout_s=1.0, on_apply=lambda t, c: applied.append((t, c.v)))
    frames = [a[0] for a in link.asked]
    due = [first_step_at_or_after(t + latency) for t in frames]
    expected = [(d, float(k)) for k, d in enumerate(due) if d < 1.0 - 1e-9]
    assert len(applied) == len(expected)
    for (t, v), (te, ve) in zip(applied, expected):
        assert t == pytest.approx(te, abs=1e-9) and v == ve
    # Every physics step drives with the newest command due by its start time; STOP before the first.
    for t, cmd in world.stepped:
        due_by = [k for k, d in enumerate(due) if d <= t + 1e-9]
        assert cmd == (Command(float(due_by[-1]), 0.0) if due_by else STOP)


def test_lockstep_measured_latency_is_the_links_own():
    world = FakeWorld(SimConfig(latency_s=None))
    link = ScriptedLink(lambda k: 0.032 if k % 2 else 0.013)  # never overtakes: frames are >= 0.03 s apart
    applied = []
    replies = []
    run(
        world,
        link,
        timeout_s=0.5,
        on_apply=lambda t, c: applied.append((t, c.v)),
        on_reply=lambda t, r: replies.append((t, r)),
    )
    assert [t for t, _ in replies] == [a[0] for a in link.asked]  # on_reply at the frame's time
    for t, v in applied:
        k = int(v)
        frame_t = link.asked[k][0]
        assert t == pytest.approx(first_step_at_or_after(frame_t + (0.032 if k % 2 else 0.013)), abs=1e-9)


def test_lockstep_answers_take_effect_in_frame_order():
    """A quick answer to a later frame never overtakes a slow answer to an earlier one."""
    world = FakeWorld(SimConfig(latency_s=None))
    link = ScriptedLink(lambda k: 0.2 if k == 0 else 0.0)
    applied = []
    run(world, link, timeout_s=0.3, on_apply=lambda t, c: applied.append((round(t, 6), c.v)))
    # Frames 1..5 (t = 0.04 .. 0.17) were answered at once, but wait behind frame 0 (due at 0.2).
    assert applied[:7] == [(0.2, 0.0), (0.2, 1.0), (0.2, 2.0), (0.2, 3.0), (0.2, 4.0), (0.2, 5.0), (0.2, 6.0)]
    assert all(cmd == STOP for t, cmd in world.stepped if t < 0.2 - 1e-9)
    at_02 = [cmd for t, cmd in world.stepped if abs(t - 0.2) < 1e-9]
    assert at_02 == [Command(6.0, 0.0)]


def test_lockstep_no_answer_keeps_the_last_command():
    world = FakeWorld(SimConfig(latency_s=0.0))
    link = ScriptedLink(lambda k: None if k >= 3 else 0.0)  # frames 3.. time out
    clock, reason = run(world, link, timeout_s=0.5)
    assert reason == "timeout"
    assert clock.missed == clock.frames - 3 and clock.replies == 3
    frame3_t = link.asked[3][0]
    after = [cmd for t, cmd in world.stepped if t >= frame3_t - 1e-9]
    assert after and all(cmd == Command(2.0, 0.0) for cmd in after)


def test_lockstep_stop_from_the_link_ends_without_a_reason():
    stop = threading.Event()
    world = FakeWorld(SimConfig(latency_s=0.0))

    class StoppingLink(ScriptedLink):
        def ask(self, frame, t, state):
            if len(self.asked) == 2:
                stop.set()
            return super().ask(frame, t, state)

    clock = EpisodeClock(world.config, 10.0, stop=stop)
    assert clock.run(world, StoppingLink(0.0)) is None
    assert clock.frames == 3 and world.sim_time_s < 0.1


class SleepyBrain:
    """Takes a random wall time per frame; answers v = frame stamp so commands are traceable."""

    name = "sleepy"

    def __init__(self, lo=0.0, hi=0.002, inference_s=None):
        self.lo, self.hi, self.inference_s = lo, hi, inference_s
        self.stamps = []

    def reset(self):
        self.stamps = []

    def step(self, image, stamp):
        self.stamps.append(stamp)
        time.sleep(random.uniform(self.lo, self.hi))
        return BrainOutput(Command(stamp, 1.0), self.inference_s)


def test_in_process_brain_reports_its_wall_time_and_inference():
    link = InProcessBrain(SleepyBrain(0.02, 0.02, inference_s=0.005))
    reply = link.ask(np.zeros((2, 3, 3), np.uint8), 0.5, None)
    assert reply.command == Command(0.5, 1.0)
    assert 0.02 <= reply.latency_s < 0.2 and reply.inference_s == 0.005


def test_lockstep_in_process_measured_latency_delays_by_the_brains_wall_time():
    world = FakeWorld(SimConfig(latency_s=None))
    replies, applied = [], []
    run(
        world,
        InProcessBrain(SleepyBrain(0.015, 0.025)),
        timeout_s=0.3,
        on_reply=lambda t, r: replies.append((t, r.latency_s)),
        on_apply=lambda t, c: applied.append((t, c.v)),
    )
    assert all(lat >= 0.015 for _, lat in replies)
    # Due on the first step at or after frame + measured latency, and never before an earlier frame's answer.
    due = np.maximum.accumulate([first_step_at_or_after(ft + lat) for ft, lat in replies])
    assert len(applied) == int(np.sum(due < 0.3 - 1e-9))
    for (t, v), (frame_t, _), d in zip(applied, replies, due):
        assert v == frame_t  # in frame order
        assert t == pytest.approx(d, abs=1e-9)
        assert t >= frame_t + 0.02 - 1e-9  # never the step of the frame or the next one


def test_lockstep_fixed_latency_is_reproducible_whatever_the_brains_wall_time():
    runs = []
    for _ in range(2):
        world = FakeWorld(SimConfig(latency_s=0.02))
        run(world, InProcessBrain(SleepyBrain(0.0, 0.003)), timeout_s=0.5)
        runs.append(world.stepped)
    assert runs[0] == runs[1]
    assert any(cmd != STOP for _, cmd in runs[0])


def test_frame_hook_sees_the_brains_command_and_replaces_it():
    seen = []

    def hook(t, frame, state, cmd):
        seen.append((t, state.t, cmd))
        time.sleep(0.02)  # the hook's time is not the brain's latency
        return Command(-cmd.v, 0.0)

    world = FakeWorld(SimConfig(latency_s=None))
    replies = []
    run(world, InProcessBrain(SleepyBrain(0.0, 0.0), hook), timeout_s=0.2, on_reply=lambda t, r: replies.append((t, r)))
    assert [s[0] for s in seen] == pytest.approx(expected_frame_times(0.2))
    assert all(s[0] == s[1] and s[2] == Command(s[0], 1.0) for s in seen)  # the brain's command, the frame's state
    assert [r.command for _, r in replies] == [Command(-t, 0.0) for t, _ in replies]  # the hook's is applied
    assert all(r.latency_s < 0.015 for _, r in replies)  # the hook's 20 ms are not the brain's latency
    assert {cmd.w for _, cmd in world.stepped} <= {0.0}


# --- real-time ------------------------------------------------------------------------------------------
def test_realtime_is_paced_by_the_wall_clock_and_renders_on_the_same_grid():
    world = FakeWorld(SimConfig(clock="realtime"))
    brain = SleepyBrain(0.0, 0.001)
    wall0 = time.perf_counter()
    clock, reason = run(world, InProcessBrain(brain), timeout_s=0.5)
    wall = time.perf_counter() - wall0
    assert reason == "timeout" and clock.steps == 50
    assert 0.45 <= wall < 2.0
    assert clock.frames == len(expected_frame_times(0.5)) == 15
    assert set(np.round(brain.stamps, 6)) <= set(np.round(expected_frame_times(0.5), 6))


def test_realtime_slow_brain_drives_on_the_newest_frame_and_its_commands_apply_on_pickup():
    world = FakeWorld(SimConfig(clock="realtime"))
    brain = SleepyBrain(0.09, 0.09)  # ~3 camera periods per answer
    replies, applied = [], []
    link = InProcessBrain(brain)
    clock, _ = run(
        world,
        link,
        timeout_s=0.8,
        on_reply=lambda t, r: replies.append((t, r)),
        on_apply=lambda t, c: applied.append((t, c)),
    )
    assert link._thread is None  # the brain's thread was stopped and joined
    frames = expected_frame_times(0.8)
    assert 3 <= len(brain.stamps) < len(frames) / 2  # it skipped frames ...
    assert np.all(np.diff(brain.stamps) > 0.03 - 1e-6)  # ... and always took a newer one than its last
    assert len(applied) == len(replies) == clock.replies
    for (t, reply), (ta, cmd) in zip(replies, applied):
        assert t == ta and reply.command == cmd
        assert t > reply.command.v + 1e-9  # never on the step of its own frame: the brain takes 90 ms
    # Each step drives with the newest command picked up by its start.
    for t, cmd in world.stepped:
        got = [c for ta, c in applied if ta <= t + 1e-9]
        assert cmd == (got[-1] if got else STOP)


def test_realtime_link_protocol_poll_applies_at_the_next_step():
    """Answers polled after a step apply from the next step on, newest last."""

    class EchoLink:
        def __init__(self):
            self.calls = []
            self.pending = []

        def start(self):
            self.calls.append("start")

        def post(self, frame, t, state):
            self.pending += [Reply(Command(t, 0.0)), Reply(Command(t + 100.0, 0.0))]

        def poll(self):
            out, self.pending = self.pending, []
            return out

        def stop(self):
            self.calls.append("stop")

    world = FakeWorld(SimConfig(clock="realtime"))
    link = EchoLink()
    run(world, link, timeout_s=0.2)
    assert link.calls == ["start", "stop"]
    frames = expected_frame_times(0.2)
    for t, cmd in world.stepped:
        last_frame = max(f for f in frames if f <= t + 1e-9)
        assert cmd == Command(last_frame + 100.0, 0.0)  # the newest of the two answers


def test_realtime_stop_event_interrupts_the_pacing():
    stop = threading.Event()
    world = FakeWorld(SimConfig(clock="realtime"))
    clock = EpisodeClock(world.config, 60.0, stop=stop)
    threading.Timer(0.2, stop.set).start()
    wall0 = time.perf_counter()
    assert clock.run(world, InProcessBrain(SleepyBrain())) is None
    assert time.perf_counter() - wall0 < 1.0


# --- end of an episode ----------------------------------------------------------------------------------
def test_end_reason_order_and_off_track_count():
    world = FakeWorld(off_track_at=0.0, lap_at=0.0)
    assert end_reason(world, 0.0) == "off_track" and world.off_track_events == 1
    world = FakeWorld(lap_at=0.0)
    assert end_reason(world, 0.0) == "lap_completed" and world.off_track_events == 0
    world = FakeWorld()
    assert end_reason(world, 0.01) is None
    world.sim_time_s = 0.01
    assert end_reason(world, 0.01) == "timeout"


@pytest.mark.parametrize("clock_name", ["lockstep", "realtime"])
def test_the_episode_ends_on_the_first_step_that_ends_it(clock_name):
    world = FakeWorld(SimConfig(clock=clock_name, latency_s=0.0), off_track_at=0.25)
    reasons = []
    clock, reason = run(
        world,
        ScriptedLink(0.0) if clock_name == "lockstep" else InProcessBrain(SleepyBrain()),
        timeout_s=5.0,
        on_step=reasons.append,
    )
    assert reason == "off_track" and world.off_track_events == 1
    assert world.sim_time_s == pytest.approx(0.25) and clock.steps == 25
    assert reasons == [None] * 24 + ["off_track"]


def test_unknown_clock_is_refused():
    with pytest.raises(ValueError):
        EpisodeClock(SimpleNamespace(clock="wallclock"), 1.0)
