"""sim_node's DdsBrainLink (sim.clock's brain link over DDS) on a fake node: stamp matching, time-outs, polling."""

import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from pilotnet_brain.control import Command
from pilotnet_brain.ros.sim_node import RESEND_AFTER_S, DdsBrainLink

FRAME = np.zeros((2, 3, 3), np.uint8)


class FakeNode:
    """The SimNode state DdsBrainLink reads; `answers(t)` says what the 'brain' sends for a published frame."""

    def __init__(self, answers=lambda t: [], stats_publishers=1, command_timeout=0.3):
        self.params = {"command_timeout": command_timeout, "brain_stats_topic": "/brain_node/stats"}
        self._stats_publishers = stats_publishers
        self._answers = answers
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._cmd, self._cmd_seq, self._cmd_wall, self._answered_stamp = Command(0.0, 0.0), 0, 0.0, None
        self.lockstep_timeouts = 0
        self.frames_resent = 0
        self.latencies = []
        self.published = []
        self.warnings = []

    def count_publishers(self, topic):
        return self._stats_publishers

    def wait_until_frames_received(self, t, timeout_s):
        """No reliable camera subscriber (no recorder) in these tests: nothing to wait for."""

    def get_logger(self):
        node = self

        class Logger:
            def warning(self, msg, **_):
                node.warnings.append(msg)

        return Logger()

    def _publish_frame(self, frame, t):
        self.published.append(t)
        threading.Thread(target=self._brain, args=(t,), daemon=True).start()

    def _brain(self, t):
        for delay, stamp, cmd in self._answers(t):  # like the node's cmd_vel and ~/stats callbacks
            time.sleep(delay)
            with self._cond:
                self._cmd, self._cmd_seq, self._cmd_wall = cmd, self._cmd_seq + 1, time.perf_counter()
                if stamp is not None:
                    self._answered_stamp = stamp
                self._cond.notify_all()


def test_ask_waits_for_the_answer_to_that_frame():
    stale, right = Command(1.0, 0.0), Command(2.0, 0.5)
    node = FakeNode(lambda t: [(0.0, t - 1 / 30, stale), (0.05, t, right)])
    reply = DdsBrainLink(node).ask(FRAME, 0.1, None)
    assert node.published == [0.1]
    assert reply.command == right
    assert 0.05 <= reply.latency_s < 0.3 and node.latencies == [reply.latency_s]
    assert node.lockstep_timeouts == 0


def test_a_lost_frame_is_sent_again_and_its_answer_taken():
    """Best-effort camera: the brain never saw the first copy; the same frame goes out again."""
    answer = Command(2.0, 0.5)
    copies = []

    def brain(t):
        copies.append(t)
        return [] if len(copies) == 1 else [(0.01, t, answer)]

    node = FakeNode(brain, command_timeout=2.0)
    wall0 = time.perf_counter()
    reply = DdsBrainLink(node).ask(FRAME, 0.1, None)
    assert node.published == [0.1, 0.1] and node.frames_resent == 1 and node.lockstep_timeouts == 0
    assert reply.command == answer
    assert RESEND_AFTER_S <= time.perf_counter() - wall0 < RESEND_AFTER_S + 0.5
    assert reply.latency_s < RESEND_AFTER_S  # counted from the copy that was answered


def test_ask_without_brain_stats_takes_the_first_new_command():
    first = Command(1.0, 0.0)
    node = FakeNode(lambda t: [(0.01, None, first), (0.1, None, Command(2.0, 0.0))], stats_publishers=0)
    assert DdsBrainLink(node).ask(FRAME, 0.0, None).command == first


def test_ask_times_out_counts_and_returns_none():
    node = FakeNode(lambda t: [(0.0, t - 1 / 30, Command(1.0, 0.0))], command_timeout=0.2)  # never this frame
    wall0 = time.perf_counter()
    assert DdsBrainLink(node).ask(FRAME, 0.5, None) is None
    assert 0.19 <= time.perf_counter() - wall0 < 1.0
    assert node.lockstep_timeouts == 1 and node.latencies == [] and len(node.warnings) == 1
    assert node.published == [0.5] and node.frames_resent == 0  # 0.2 s: before a re-send was due


def test_ask_returns_none_at_once_when_the_node_stops():
    node = FakeNode(command_timeout=5.0)

    def stop():  # as SimNode.stop: set the event, wake the waiter
        node._stop.set()
        with node._cond:
            node._cond.notify_all()

    threading.Timer(0.1, stop).start()
    wall0 = time.perf_counter()
    assert DdsBrainLink(node).ask(FRAME, 0.0, None) is None
    assert time.perf_counter() - wall0 < 1.0 and node.lockstep_timeouts == 0


def test_realtime_poll_hands_over_the_newest_command_once():
    node = FakeNode()
    link = DdsBrainLink(node)
    link.start()
    assert link.poll() == []
    node._answers = lambda t: [(0.0, t, Command(1.0, 0.0)), (0.0, t, Command(3.0, 0.0))]
    link.post(FRAME, 0.2, None)
    deadline = time.monotonic() + 2.0
    while node._cmd_seq < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert node.published == [0.2]
    assert [r.command for r in link.poll()] == [Command(3.0, 0.0)]
    assert link.poll() == []
    link.stop()
