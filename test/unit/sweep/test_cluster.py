"""`pilotnet-brain sweep --address`: a real two-node Ray cluster on this machine, started the usual way
(`ray start --head`, then `ray start --address=...` for the second node), runs the sweep's runs on both
nodes. The nodes are stopped by killing exactly the processes started here (`ray stop` would stop every
Ray instance of the machine). Marked `ray_cluster`: `pytest -m "not ray_cluster"` skips it."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray_cluster

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict:
    """{pid: (parent pid, process group)} of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def _node_processes(groups: set) -> set:
    """The processes of the started nodes: their process groups' members and those members' children (the
    workers, each in a session of its own)."""
    table = _processes()
    members = {pid for pid, (_, pgid) in table.items() if pgid in groups}
    return members | {pid for pid, (parent, _) in table.items() if parent in members}


def _stop(groups: set) -> None:
    """SIGTERM to every process of the started nodes, SIGKILL to what is left after 3 s (Ray's agents
    ignore SIGTERM); exactly these processes, nothing else of the machine."""
    pids = _node_processes(groups)
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and pids & set(_processes()):
            time.sleep(0.2)


@pytest.fixture
def two_node_cluster(tmp_path):
    """(address, environment) of a head and a second node, 1 CPU each, with token authentication."""
    if not RAY.is_file():
        pytest.skip(f"no {RAY} (install the 'sweep' extra)")
    token = tmp_path / "ray_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # The nodes' session (logs, sockets): a short path, as a Unix socket's path has at most 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray_", dir="/tmp"))
    commands = [
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
        ],
        [RAY, "start", f"--address={address}", "--num-cpus=1"],
    ]
    groups = set()
    try:
        for command in commands:
            # A process group of its own: the node's daemons (gcs_server, raylet, agents) stay in it.
            start = subprocess.Popen(
                list(map(str, command)),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            groups.add(start.pid)
            output, _ = start.communicate(timeout=120)
            assert start.returncode == 0, output[-3000:]
        yield address, env
    finally:
        _stop(groups)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not _node_processes(groups), "processes of the test's Ray nodes survived"


def test_a_sweep_runs_on_both_nodes_of_a_cluster(two_node_cluster, tmp_path):
    address, env = two_node_cluster
    out = tmp_path / "out"
    argv = ["sweep", "--brains", "explicit", "--circuits", "simple_circuit,nurburgring", "--directions", "ccw,cw"]
    argv += ["--timeout", "20", "--latency-ms", "2", "--address", address, "--out", str(out), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "pilotnet_brain.cli.main", *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Ray cluster at {address} (2 node(s)" in done.stderr
    runs = json.loads((out / "sweep.json").read_text())
    assert len(runs) == 4 and not any(r.get("error") for r in runs)
    assert len({r["node_id"] for r in runs}) == 2  # both nodes ran runs
    assert all((out / r["run_dir"] / "trajectory.png").is_file() for r in runs)
