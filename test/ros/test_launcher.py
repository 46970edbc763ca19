"""The launcher brings the real graph up over DDS, gets the metrics, and leaves no process behind."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from conftest import unique_domain_id

from pilotnet_brain.ros import launcher

MARK = "PILOTNET_TEST_RUN_MARK"


def processes_mentioning(text: str) -> list:
    """PIDs whose command line or environment contains `text` (the run's unique output directory;
    the tests put it in the environment as PILOTNET_TEST_RUN_MARK, which every node inherits)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if any(text.encode() in (d / f).read_bytes() for f in ("cmdline", "environ")):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


@pytest.fixture(autouse=True)
def mark_processes(monkeypatch, tmp_path):
    monkeypatch.setenv(MARK, str(tmp_path / "run"))


def test_run_simulation_short_run_and_clean_teardown(tmp_path):
    out = tmp_path / "run"
    terminal = io.StringIO()
    domain = unique_domain_id(60)
    r = launcher.run_simulation(
        "simple_circuit",
        "ccw",
        "explicit",
        clock="lockstep",
        out_dir=out,
        timeout=4.0,
        domain_id=domain,
        wall_timeout=90,
        echo=terminal,
        conditions="lighting=moderate",  # not changing what the explicit brain sees of the red line
        seed=3,
    )
    # on the terminal: the domain, how to attach a tool, then every node's lines prefixed with its name ...
    lines = terminal.getvalue().splitlines()
    assert lines[0].startswith(f"[launch] ROS_DOMAIN_ID={domain} (private to this run); transport: ")
    assert f"ROS_DOMAIN_ID={domain} " in lines[1] and "ros2 topic echo /F1ROS/cmd_vel" in lines[1]
    for name in ("sim_node", "brain_node", "metrics_node"):
        echoed = [line.removeprefix(f"[{name}] ") for line in lines if line.startswith(f"[{name}] ")]
        assert echoed, name
        # ... and the same lines, whole, in the node's log file
        assert echoed == (out / "logs" / f"{name}.log").read_text().splitlines(), name
    assert any("episode ended: timeout" in line for line in lines if line.startswith("[sim_node] "))
    m = r["metrics"]
    assert r["metrics_path"] == out / "simple_circuit_ccw_explicit.json"
    assert json.loads(r["metrics_path"].read_text()) == m
    assert m["end_reason"] == "timeout" and m["brain"] == "explicit"
    assert m["condition"] == "lighting=0.5"  # sim_node's conditions, as metrics_node records them
    assert any("conditions lighting=0.5 (seed 3)" in line for line in lines if line.startswith("[sim_node] "))
    assert m["completed_distance_m"] > 20 and m["off_track_events"] == 0
    assert m["brain_iteration_frequency_hz"] > 30 and m["lockstep_timeouts"] == 0
    assert m["odometry_samples"] >= 400  # every physics step arrived
    assert abs(m["sim_time_s"] - 4.0) < 0.02
    assert (out / "summary.csv").read_text().count("\n") == 2
    assert r["bag_path"] is None
    assert set(r["exit_codes"]) == {"sim_node", "brain_node", "metrics_node"}
    assert all(code == 0 for code in r["exit_codes"].values()), r["exit_codes"]
    assert processes_mentioning(str(out)) == []


def test_node_failure_fails_the_run_fast_and_cleans_up(tmp_path):
    # valid for the schema (any string), refused by the node at start-up
    bad = tmp_path / "backend.yaml"
    bad.write_text("brain_node:\n  ros__parameters:\n    brain: pilotnet\n    backend: no_such_backend\n")
    t0 = time.monotonic()
    with pytest.raises(launcher.LaunchError, match="brain_node exited with code 2(.|\n)*no_such_backend"):
        launcher.run_simulation(
            "simple_circuit",
            "ccw",
            bad,
            out_dir=tmp_path / "run",
            timeout=2.0,
            domain_id=unique_domain_id(60),
            wall_timeout=60,
        )
    assert time.monotonic() - t0 < 30
    assert processes_mentioning(str(tmp_path / "run")) == []


def test_unknown_brain_parameter_refused_before_start(tmp_path):
    from pilotnet_brain.errors import ConfigError

    bad = tmp_path / "typo.yaml"
    bad.write_text("brain_node:\n  ros__parameters:\n    brain: explicit\n    max_speed: 3.0\n")
    with pytest.raises(ConfigError, match="max_speed"):
        launcher.simulation_graph("simple_circuit", "ccw", bad, out_dir=tmp_path)


@pytest.mark.parametrize(
    ("brain_yaml", "options", "message"),
    [
        ("device: tpu", {}, r"brain_node: device='tpu' is not allowed \(allowed: one of cpu, cuda\)"),
        ("max_v: .nan", {}, "brain_node: max_v="),
        ("", {"scale": -1.0}, r"sim_node: scale=-1.0 is out of range \(allowed: a float > 0\)"),
        ("", {"timeout": -5}, r"sim_node: timeout=-5 is out of range"),
        ("", {"clock": "fast"}, r"sim_node: clock='fast' is not allowed"),
        ("", {"conditions": "fog=0.5"}, r"conditions='fog=0.5': unknown condition 'fog'"),
        ("", {"seed": -1}, r"sim_node: seed=-1 is out of range"),
    ],
)
def test_bad_values_refused_before_start(tmp_path, brain_yaml, options, message):
    from pilotnet_brain.errors import ConfigError

    preset = tmp_path / "preset.yaml"
    preset.write_text(f"brain_node:\n  ros__parameters:\n    brain: explicit\n    {brain_yaml}\n")
    with pytest.raises(ConfigError, match=message):
        launcher.simulation_graph("simple_circuit", "ccw", preset, out_dir=tmp_path / "run", **options)
    assert not (tmp_path / "run").exists()


def test_ctrl_c_of_the_launcher_leaves_no_orphans(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, ROS_DOMAIN_ID=str(unique_domain_id(60)))
    terminal = (tmp_path / "launcher.out").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pilotnet_brain.cli",
            "launch",
            "simulation",
            "--circuit",
            "simple_circuit",
            "--clock",
            "realtime",
            "--timeout",
            "60",
            "--out",
            str(out),
        ],
        env=env,
        stdout=terminal,  # a file: an unread pipe fills with the nodes' echoed lines and blocks the launcher
        stderr=subprocess.STDOUT,
        # SIGINT as a terminal leaves it: a test run started in the background of a script inherits it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 40
        sim_log = out / "logs" / "sim_node.log"
        while time.monotonic() < deadline:
            if sim_log.exists() and "clock realtime" in sim_log.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the graph did not come up")
        assert len(processes_mentioning(str(out))) >= 3
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        terminal.close()
    deadline = time.monotonic() + 5
    while processes_mentioning(str(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(out)) == []


def test_process_output_goes_to_its_log_and_to_the_terminal_prefixed(tmp_path):
    terminal = io.StringIO()
    group = launcher.ProcessGroup(dict(os.environ), echo=terminal)
    script = "import sys; print('one'); print('two', file=sys.stderr); sys.stdout.write('three'); sys.exit(2)"
    log = tmp_path / "logs" / "talker.log"
    proc = group.start(launcher.ProcessSpec("talker", [sys.executable, "-c", script], log))
    proc.wait(timeout=30)
    group.wait_output("talker")  # the reader has copied everything once the process has exited
    assert log.read_text().splitlines() == ["one", "two", "three"]
    assert terminal.getvalue() == "[talker] one\n[talker] two\n[talker] three\n"
    assert group.shutdown() == {"talker": 2}


def test_without_a_terminal_output_goes_to_the_log_only(tmp_path, capfd):
    group = launcher.ProcessGroup(dict(os.environ))
    log = tmp_path / "quiet.log"
    group.start(launcher.ProcessSpec("quiet", [sys.executable, "-c", "print('hello')"], log)).wait(timeout=30)
    assert group.shutdown() == {"quiet": 0}
    assert log.read_text() == "hello\n"
    assert capfd.readouterr() == ("", "")


def test_launch_brain_shows_why_the_node_did_not_start_and_exits_2(tmp_path):
    """`pilotnet-brain launch brain` with a preset the node refuses: its one-line reason on the terminal
    ([brain_node]-prefixed) and in its log, the domain and how to attach a tool before, exit code 2."""
    bad = tmp_path / "backend.yaml"  # valid for the schema (any string), refused by the node at start-up
    bad.write_text("brain_node:\n  ros__parameters:\n    brain: pilotnet\n    backend: no_such_backend\n")
    domain = unique_domain_id(60)
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "pilotnet_brain.cli", "launch", "brain", "--brain-config", str(bad), "--out", str(out)],
        env=dict(os.environ, ROS_DOMAIN_ID=str(domain)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    node_lines = [line for line in lines if line.startswith("[brain_node] ")]
    assert len(node_lines) == 1, lines
    assert re.search(r"\[brain_node\]: cannot start: unknown backend 'no_such_backend'", node_lines[0])
    assert lines[0].startswith(f"[launch] ROS_DOMAIN_ID={domain} (from the environment)")
    assert f"ROS_DOMAIN_ID={domain} " in lines[1] and "ros2 topic echo /F1ROS/cmd_vel" in lines[1]
    assert lines[-1] == f"[launch] brain_node exited with code 2 (log: {out / 'logs' / 'brain_node.log'})"
    log = (out / "logs" / "brain_node.log").read_text()
    assert node_lines[0].removeprefix("[brain_node] ") in log
    assert "Traceback" not in r.stderr + r.stdout


def test_simulation_with_use_sim_time_and_a_recorder_runs_to_the_end(tmp_path):
    """Every node on sim_node's /clock, bag_recorder too: their bookkeeping timers still run before the
    first /clock and after the last, so the graph starts, scores and shuts down as without it."""
    pytest.importorskip("rosbags")
    out = tmp_path / "run"
    r = launcher.run_simulation(
        "simple_circuit",
        "ccw",
        "explicit",
        clock="lockstep",
        out_dir=out,
        timeout=2.0,
        record=True,
        use_sim_time=True,
        domain_id=unique_domain_id(61),
        wall_timeout=120,
    )
    assert r["metrics"]["end_reason"] == "timeout" and r["metrics"]["lockstep_timeouts"] == 0
    assert all(code == 0 for code in r["exit_codes"].values()), r["exit_codes"]
    assert "watchdog 0.5 s on the sim time (/clock)" in (out / "logs" / "brain_node.log").read_text()
    assert r["bag_path"] is not None and (r["bag_path"] / "metadata.yaml").is_file()
    assert processes_mentioning(str(out)) == []
