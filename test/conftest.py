"""Shared test helpers (once, here): repository paths, a synthetic stadium circuit, private ROS domain IDs, the `ros` marker."""

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest

from pilotnet_brain.sim.track_map import TrackMap

#: The repository checkout and the shared real race tracks beside it (read, never copied).
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TRACKS = REPO_ROOT.parent / "shared" / "eval" / "tracks"

STADIUM_STRAIGHT_M = 200.0
STADIUM_RADIUS_M = 40.0
STADIUM_HALF_WIDTH_M = 3.5
STADIUM_SPACING_M = 0.5

_domain_counter = itertools.count()


def unique_domain_id(offset: int = 0) -> int:
    """A ROS_DOMAIN_ID in ROS 2's safe range, new for each call in this process, unlikely to meet another run's."""
    from pilotnet_brain.ros.environment import PRIVATE_DOMAIN_IDS

    ids = PRIVATE_DOMAIN_IDS
    return ids[(os.getpid() * 13 + next(_domain_counter) * 7 + offset) % len(ids)]


def stadium_centerline(straight=STADIUM_STRAIGHT_M, radius=STADIUM_RADIUS_M, spacing=STADIUM_SPACING_M):
    """Counter-clockwise stadium: the bottom straight runs along y = -radius in +x from x = -straight/2.

    On the bottom straight the signed distance of (x, y) is exactly y + radius (left = +y = inside).
    """
    half = straight / 2
    n_s = int(round(straight / spacing))
    n_c = int(round(math.pi * radius / spacing))
    bottom = np.column_stack([-half + np.arange(n_s) * straight / n_s, np.full(n_s, -radius)])
    a = -math.pi / 2 + np.arange(n_c) * math.pi / n_c
    right = np.column_stack([half + radius * np.cos(a), radius * np.sin(a)])
    top = np.column_stack([half - np.arange(n_s) * straight / n_s, np.full(n_s, radius)])
    a = math.pi / 2 + np.arange(n_c) * math.pi / n_c
    left = np.column_stack([-half + radius * np.cos(a), radius * np.sin(a)])
    return np.vstack([bottom, right, top, left])


@pytest.fixture(scope="session")
def stadium_track():
    return TrackMap.from_centerline(stadium_centerline(), STADIUM_HALF_WIDTH_M)


def pytest_configure(config):
    """Every DDS participant of this test process gets the graph's Fast DDS profile (config/fastdds.xml).
    Fast DDS reads it once, when the process's first participant is created: set per test, a participant
    made earlier without it (test_bags' publishers) left the rest on the default transports, whose
    512 KiB shared-memory segment cannot hold a camera frame (best-effort frames then went over
    fragmented UDP and were lost: a flaky "no answer to a camera image")."""
    from pilotnet_brain.ros.environment import fastdds_environment

    os.environ.update(fastdds_environment())


def pytest_collection_modifyitems(config, items):
    """Everything under test/ros/ runs real rclpy nodes over DDS: mark it `ros`."""
    ros_dir = Path(__file__).resolve().parent / "ros"
    for item in items:
        if ros_dir in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.ros)


def run_cli(argv, capsys):
    """Run `pilotnet-brain ARGV` in-process: (exit code, stdout, stderr). argparse's SystemExit counts as an exit."""
    from pilotnet_brain.cli.main import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_failure(rc, out, err, *names, out_dir=None):
    """A bad input: non-zero exit, one error line that names the bad input, no traceback, nothing half-written.

    `names`: fragments the message must contain (the option, file, parameter or value at fault).
    `out_dir`: a directory the command must leave without partial results (no 0-byte or *.tmp files).
    """
    assert rc not in (0, None), f"exit code {rc}; stdout={out[-500:]!r} stderr={err[-500:]!r}"
    assert "Traceback" not in err and "Traceback" not in out, err[-2000:]
    lines = [line for line in err.strip().splitlines() if line.strip() and "error" in line.lower()]
    assert len(lines) == 1, f"expected one error line, got {len(lines)}: {err[-1500:]!r}"
    for name in names:
        assert str(name) in lines[0], f"{name!r} not named in: {lines[0]!r}"
    if out_dir is not None and Path(out_dir).exists():
        for f in Path(out_dir).rglob("*"):
            if f.is_file():
                assert f.stat().st_size > 0, f"0-byte file left: {f}"
                assert not f.name.endswith(".tmp"), f"temporary file left: {f}"
