"""A recorded run (real DDS) holds every message its publishers sent during the episode, with the
publishers' QoS in its metadata; the launcher supervises the recorder; the launch file wires `record`
the same way as the launcher."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("rosbags")

from conftest import unique_domain_id
from test_bags import offered_qos_profiles
from test_launch_files import of_type, run_launch_file
from test_launcher import MARK, processes_mentioning

from pilotnet_brain.bags.reader import bag_summary
from pilotnet_brain.bags.writer import read_side_file, typestore
from pilotnet_brain.interfaces import DEFAULT_TOPICS
from pilotnet_brain.ros import launcher

#: sim_node's last words about the episode: what it published (sim_node.py, end of _run).
SIM_PUBLISHED = re.compile(r"published (\d+) frames, (\d+) odometry, (\d+) clock and (\d+) stats messages")
#: brain_node publishes one zero command per watchdog firing, and says so.
BRAIN_WATCHDOG = "watchdog: no fresh image"


@pytest.fixture(autouse=True)
def mark_processes(monkeypatch, tmp_path):
    monkeypatch.setenv(MARK, str(tmp_path / "run"))


def _statuses(bag: Path) -> list:
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == DEFAULT_TOPICS["status"]]
        return [typestore().deserialize_cdr(raw, c.msgtype).data for c, _, raw in reader.messages(connections=conns)]


def test_recorded_run_holds_every_message_published_during_the_episode(tmp_path):
    out = tmp_path / "run"
    r = launcher.run_simulation(
        "simple_circuit",
        "ccw",
        "explicit",
        clock="lockstep",
        record=True,
        out_dir=out,
        timeout=3.0,
        domain_id=unique_domain_id(62),
        wall_timeout=120,
        use_sim_time=True,  # the brain's watchdog follows /clock: no stray zero command around the end
    )
    bag = r["bag_path"]
    assert r["exit_codes"][launcher.RECORDER_EXECUTABLE] == 0
    assert read_side_file(bag)["episode_end"] == "timeout"
    m = r["metrics"]
    assert m["end_reason"] == "timeout" and m["lockstep_timeouts"] == 0

    sim_log = (out / "logs" / "sim_node.log").read_text()
    frames, odometry, clock, sim_stats = map(int, SIM_PUBLISHED.search(sim_log).groups())
    assert frames > 80 and odometry > 300  # 3 s of lock-step: ~90 frames, ~300 physics steps
    # lock-step without time-outs: brain_node answered every frame with one command and one stats
    # message, and sent one zero command for each watchdog firing
    commands = frames + (out / "logs" / "brain_node.log").read_text().count(BRAIN_WATCHDOG)

    counts = {topic: t["count"] for topic, t in bag_summary(bag)["topics"].items()}
    assert counts == {
        DEFAULT_TOPICS["camera"]: frames,
        DEFAULT_TOPICS["odom"]: odometry,
        DEFAULT_TOPICS["clock"]: clock,
        DEFAULT_TOPICS["sim_stats"]: sim_stats,
        DEFAULT_TOPICS["stats"]: frames,
        DEFAULT_TOPICS["cmd_vel"]: commands,
        DEFAULT_TOPICS["status"]: 3,
    }
    assert _statuses(bag) == ["waiting", "running", "timeout"]

    # offered_qos_profiles: what each topic's one publisher offered (as rosbag2 records), not the recorder's
    offered = offered_qos_profiles(bag)
    assert set(offered) == set(counts)
    latched = {DEFAULT_TOPICS["status"], DEFAULT_TOPICS["sim_stats"]}
    for topic, profiles in offered.items():
        assert len(profiles) == 1, topic
        (qos,) = profiles
        # the camera too: recording makes sim_node publish it reliably (camera_reliable)
        assert qos["reliability"] == "reliable", topic
        assert qos["durability"] == ("transient_local" if topic in latched else "volatile"), topic
        assert qos["history"] != "keep_all", topic  # the recorder's own queue is KEEP_ALL; no publisher's is
    assert processes_mentioning(str(out)) == []


def _wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _recorder_pid(out: Path):
    """The bag_recorder process of the run writing into `out` (its parameters name the bag in `out`)."""
    for pid in processes_mentioning(str(out)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"bag_recorder" in cmdline and b"__node:=bag_recorder" in cmdline:
            return pid
    return None


@pytest.mark.parametrize(
    ("sig", "message"),
    [
        (signal.SIGKILL, "bag_recorder exited with code -9: the run is not recorded completely"),
        (signal.SIGTERM, "bag_recorder stopped before the episode ended: the bag"),
    ],
)
def test_a_recorder_that_stops_mid_run_fails_the_run(tmp_path, sig, message):
    out = tmp_path / "run"
    stopped = []

    def stop_recorder_once_the_episode_runs():
        sim_log = out / "logs" / "sim_node.log"
        if _wait_for(lambda: sim_log.is_file() and "graph matched" in sim_log.read_text()):
            time.sleep(1.0)
            pid = _recorder_pid(out)
            if pid is not None:
                os.kill(pid, sig)
                stopped.append(pid)

    killer = threading.Thread(target=stop_recorder_once_the_episode_runs, daemon=True)
    killer.start()
    with pytest.raises(launcher.LaunchError) as error:
        launcher.run_simulation(
            "simple_circuit",
            "ccw",
            "explicit",
            clock="realtime",  # long enough in wall time to stop the recorder mid-episode
            record=True,
            out_dir=out,
            timeout=20.0,
            domain_id=unique_domain_id(63),
            wall_timeout=120,
        )
    killer.join(timeout=5)
    assert stopped, "the recorder was never seen running"
    text = str(error.value)
    assert text.startswith(message), text
    assert str(out / "logs" / "bag_recorder.log") in text
    assert processes_mentioning(str(out)) == []


def test_an_output_directory_holding_the_bag_is_refused_before_anything_starts(tmp_path):
    out = tmp_path / "run"
    graph = launcher.simulation_graph("simple_circuit", "ccw", "explicit", record=True, out_dir=out, domain_id=50)
    graph.bag_path.mkdir(parents=True)
    t0 = time.monotonic()
    with pytest.raises(launcher.LaunchError, match=r"already holds this run's bag simple_circuit_ccw_explicit_bag"):
        launcher.run_simulation("simple_circuit", "ccw", "explicit", record=True, out_dir=out, domain_id=50)
    assert time.monotonic() - t0 < 5.0
    assert not (out / "logs").exists()  # no node was started


def test_launch_file_record_makes_the_episode_wait_for_the_recorder(monkeypatch):
    entities = run_launch_file("simulation.launch.py", monkeypatch)
    nodes = {n.kwargs["name"]: n for n in of_type(entities, "Node")}
    recorder = nodes[launcher.RECORDER_EXECUTABLE]
    assert recorder.kwargs["condition"].args[0].args == ("record",)
    (sim_params,) = [p for p in nodes["sim_node"].kwargs["parameters"] if isinstance(p, dict)]
    # as the launcher: 2 odometry subscribers (metrics_node + bag_recorder), and a reliable camera
    (expression,) = sim_params["odom_subscribers"].args
    assert [type(e).__name__ for e in expression].count("LaunchConfiguration") == 1
    assert next(e for e in expression if type(e).__name__ == "LaunchConfiguration").args == ("record",)
    assert eval("".join(e if isinstance(e, str) else "true" for e in expression)) == 2
    assert eval("".join(e if isinstance(e, str) else "false" for e in expression)) == 1
    assert sim_params["camera_reliable"].args == ("record",)
    graph = launcher.simulation_graph("simple_circuit", "ccw", "explicit", record=True, out_dir="/tmp/x", domain_id=50)
    sim_argv = next(p.argv for p in graph.processes if p.name == "sim_node")
    assert "odom_subscribers:=2" in sim_argv and "camera_reliable:=true" in sim_argv

    # a failing recorder shuts the launch down, saying why; its normal exit (code 0) does not
    (handler,) = [
        h.args[0] for h in of_type(entities, "RegisterEventHandler") if h.args[0].kwargs["target_action"] is recorder
    ]
    on_exit = handler.kwargs["on_exit"]
    assert on_exit(types.SimpleNamespace(returncode=0), None) is None
    (emit,) = on_exit(types.SimpleNamespace(returncode=2), None)
    (shutdown,) = emit.kwargs.values()
    assert "bag_recorder exited with code 2" in shutdown.kwargs["reason"]


def test_recorder_refuses_an_existing_output_in_one_line(tmp_path):
    existing = tmp_path / "bag"
    existing.mkdir()
    env = dict(os.environ, ROS_DOMAIN_ID=str(unique_domain_id(64)))
    argv = [sys.executable, "-m", launcher.RECORDER_MODULE, "--ros-args", "-p", f"output:={existing}"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot start: {existing} already exists" in lines[0], lines
    assert list(existing.iterdir()) == []  # nothing written into it
