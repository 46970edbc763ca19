"""The launcher brings the real graph up over DDS, gets the metrics, and leaves no process behind."""

import json
import os
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
    r = launcher.run_simulation(
        "simple_circuit",
        "ccw",
        "explicit",
        clock="lockstep",
        out_dir=out,
        timeout=4.0,
        domain_id=unique_domain_id(60),
        wall_timeout=90,
    )
    m = r["metrics"]
    assert r["metrics_path"] == out / "simple_circuit_ccw_explicit.json"
    assert json.loads(r["metrics_path"].read_text()) == m
    assert m["end_reason"] == "timeout" and m["brain"] == "explicit"
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
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
    deadline = time.monotonic() + 5
    while processes_mentioning(str(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(out)) == []
