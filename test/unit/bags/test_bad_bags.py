"""Damaged and foreign bags through the CLI (`pilotnet-brain analyze BAG --out DIR`): each is refused with exit
code 2, one error line naming the bag and the fault, no traceback and nothing written. An MCAP bag that
lost its index (its recorder SIGKILLed, or the file cut short) is recovered instead: the intact
messages are read and the command says how many.

To add a case, append a ``Case`` to CASES: an id, the storage of the sound bag it starts from, a
function that damages that bag directory, and the fragments the error line must contain.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("mcap")

from conftest import assert_clean_failure, run_cli

from pilotnet_brain.bags.reader import read_bag
from pilotnet_brain.bags.score import metrics_from_bag
from pilotnet_brain.bags.writer import SIDE_FILE, BagWriter, typestore, write_side_file
from pilotnet_brain.interfaces import DEFAULT_TOPICS, DEFAULT_TYPES
from pilotnet_brain.sim.circuits import load_circuit

CIRCUIT = "simple_circuit"
ODOM_HZ = 20.0
SPEED_MPS = 10.0


# --------------------------------------------------------------------------- a sound run's bag


def _msgs():
    return typestore().types


def _stamp(t):
    sec = int(math.floor(t))
    return _msgs()["builtin_interfaces/msg/Time"](sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _odometry(t, x, y, yaw):
    T = _msgs()
    vector = T["geometry_msgs/msg/Vector3"]
    pose = T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)),
    )
    twist = T["geometry_msgs/msg/Twist"](linear=vector(x=SPEED_MPS, y=0.0, z=0.0), angular=vector(x=0.0, y=0.0, z=0.0))
    return T["nav_msgs/msg/Odometry"](
        header=T["std_msgs/msg/Header"](stamp=_stamp(t), frame_id="odom"),
        child_frame_id="base_link",
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
    )


def lap_positions(laps=1.02):
    """(t, xy, yaw): the car on the circuit's center line at SPEED_MPS, odometry at ODOM_HZ."""
    circuit = load_circuit(CIRCUIT)
    line = np.vstack([circuit.centerline, circuit.centerline[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(line, axis=0).T))])
    t = np.arange(int(laps * arc[-1] / SPEED_MPS * ODOM_HZ)) / ODOM_HZ
    s = (t * SPEED_MPS) % arc[-1]
    xy = np.column_stack([np.interp(s, arc, line[:, 0]), np.interp(s, arc, line[:, 1])])
    heading = np.gradient(xy, axis=0)
    return t, xy, np.arctan2(heading[:, 1], heading[:, 0])


def write_run_bag(path, storage="mcap", laps=1.02, kill_before_close=False):
    """A run's bag as bag_recorder writes it: side file first, then clock + odometry, the episode status last.

    ``kill_before_close``: SIGKILL this process instead of closing (what a killed recorder leaves).
    Returns how many messages were written."""
    config = {"circuit": CIRCUIT, "direction": "ccw", "brain": "synthetic", "scale": 1.0, "reference_spacing_m": 1.0}
    t, xy, yaw = lap_positions(laps)
    T = _msgs()
    writer = BagWriter(path, storage, config)
    write_side_file(path, config, None)
    for role in ("odom", "clock", "status"):
        writer.add_topic(DEFAULT_TOPICS[role], DEFAULT_TYPES[role])
    count = 0
    for ti, (x, y), a in zip(t, xy, yaw):
        ns = 1_000_000_000 + int(round(ti * 1e9))
        writer.write_msg(DEFAULT_TOPICS["clock"], ns, T["rosgraph_msgs/msg/Clock"](clock=_stamp(ti)))
        writer.write_msg(DEFAULT_TOPICS["odom"], ns + 1, _odometry(ti, float(x), float(y), float(a)))
        count += 2
    writer.write_msg(DEFAULT_TOPICS["status"], ns + 2, T["std_msgs/msg/String"](data="lap_completed"))
    count += 1
    if kill_before_close:
        sys.stdout.write(f"{count}\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    writer.close()
    return count


@pytest.fixture(scope="module")
def sound_bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("sound")
    # Three laps: the MCAP file then holds a few chunks, so a cut keeps some intact.
    written = {storage: write_run_bag(root / storage, storage, laps=3) for storage in ("mcap", "sqlite3")}
    return root, written


def storage_file(bag: Path) -> Path:
    (file,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    return file


# --------------------------------------------------------------------------- damage


def edit_metadata(old: str, new: str) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        meta = bag / "metadata.yaml"
        text = meta.read_text()
        assert old in text, f"{old!r} not in metadata.yaml"
        meta.write_text(text.replace(old, new))

    return damage


def write_file(name: str, content) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        target = storage_file(bag) if name == "<storage>" else bag / name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)

    return damage


def remove(name: str) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        (storage_file(bag) if name == "<storage>" else bag / name).unlink()

    return damage


def truncate_storage(keep_bytes: int) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        file = storage_file(bag)
        file.write_bytes(file.read_bytes()[:keep_bytes])

    return damage


def both(*damages) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        for d in damages:
            d(bag)

    return damage


def empty_directory(bag: Path) -> None:
    shutil.rmtree(bag)
    bag.mkdir()


def unrelated_files(bag: Path) -> None:
    shutil.rmtree(bag)
    bag.mkdir()
    (bag / "notes.txt").write_text("a directory, but not a bag\n")
    (bag / "data.csv").write_text("1,2,3\n")


def drop_custom_config(bag: Path) -> None:
    (bag / SIDE_FILE).unlink()
    edit_metadata("pilotnet_brain.config", "someone.else")(bag)


def side_config(**changes) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        import json

        side = json.loads((bag / SIDE_FILE).read_text())
        side["config"].update(changes)
        (bag / SIDE_FILE).write_text(json.dumps(side))

    return damage


@dataclass(frozen=True)
class Case:
    id: str
    storage: str
    damage: Callable[[Path], None]
    fragments: tuple = ()


CASES = [
    # --- not a bag directory
    Case("empty_directory", "mcap", empty_directory, ("not a rosbag2 bag directory",)),
    Case("unrelated_files", "mcap", unrelated_files, ("no metadata.yaml and no .mcap file",)),
    Case("sqlite_without_metadata", "sqlite3", remove("metadata.yaml"), ("no metadata.yaml",)),
    # --- metadata.yaml
    Case("metadata_empty", "mcap", write_file("metadata.yaml", ""), ("metadata.yaml is empty",)),
    Case("metadata_blank", "sqlite3", write_file("metadata.yaml", "\n  \n"), ("metadata.yaml is empty",)),
    Case(
        "metadata_broken_yaml",
        "mcap",
        write_file("metadata.yaml", "rosbag2_bagfile_information: [a, b\n"),
        ("not valid YAML", "line"),
    ),
    Case("metadata_bad_indentation", "mcap", write_file("metadata.yaml", "a:\n  b: 1\n c: 2\n"), ("not valid YAML",)),
    Case(
        "metadata_tab_indent",
        "sqlite3",
        write_file("metadata.yaml", "rosbag2_bagfile_information:\n\tversion: 9\n"),
        ("not valid YAML",),
    ),
    Case("metadata_a_list", "mcap", write_file("metadata.yaml", "- 1\n- 2\n"), ("rosbag2_bagfile_information",)),
    Case("metadata_a_string", "mcap", write_file("metadata.yaml", "hello\n"), ("rosbag2_bagfile_information",)),
    Case(
        "metadata_other_tool",
        "mcap",
        write_file("metadata.yaml", "version: 3\nfiles: []\n"),
        ("rosbag2_bagfile_information",),
    ),
    Case(
        "metadata_binary",
        "mcap",
        write_file("metadata.yaml", b"\xff\xfe\x00garbage"),
        ("metadata.yaml cannot be read",),
    ),
    Case(
        "storage_unknown",
        "mcap",
        edit_metadata("storage_identifier: mcap", "storage_identifier: rosbag1"),
        ("unknown bag storage 'rosbag1'",),
    ),
    Case(
        "storage_missing_key",
        "sqlite3",
        edit_metadata("storage_identifier: sqlite3", "storage_name: sqlite3"),
        ("unknown bag storage ''",),
    ),
    Case(
        "file_list_missing",
        "mcap",
        edit_metadata("relative_file_paths:", "relative_paths:"),
        ("lists no storage files",),
    ),
    # --- the storage file
    Case("mcap_missing", "mcap", remove("<storage>"), ("mcap.mcap listed in metadata.yaml is missing",)),
    Case("sqlite_missing", "sqlite3", remove("<storage>"), ("sqlite3.db3 listed in metadata.yaml is missing",)),
    Case("mcap_empty", "mcap", write_file("<storage>", b""), ("no intact message could be recovered",)),
    Case(
        "mcap_garbage", "mcap", write_file("<storage>", b"\x00garbage" * 512), ("no intact message could be recovered",)
    ),
    Case("mcap_header_only", "mcap", truncate_storage(64), ("no intact message could be recovered",)),
    Case(
        "mcap_without_metadata_header_only",
        "mcap",
        both(remove("metadata.yaml"), truncate_storage(64)),
        ("no intact message",),
    ),
    Case(
        "sqlite_garbage",
        "sqlite3",
        write_file("<storage>", b"SQLite format 3\x00" + b"\xff" * 4096),
        ("sqlite3 storage cannot be read",),
    ),
    Case("sqlite_empty", "sqlite3", write_file("<storage>", b""), ("sqlite3 storage cannot be read",)),
    Case("sqlite_truncated", "sqlite3", truncate_storage(4096), ("sqlite3 storage cannot be read",)),
    Case(
        "sqlite_is_text",
        "sqlite3",
        write_file("<storage>", "not a database\n" * 100),
        ("sqlite3 storage cannot be read",),
    ),
    # --- the run's configuration
    Case(
        "side_file_broken_json",
        "mcap",
        write_file(SIDE_FILE, "{not json"),
        ("pilotnet_brain.json cannot be read as JSON",),
    ),
    Case("side_file_a_list", "sqlite3", write_file(SIDE_FILE, "[1, 2]"), ("pilotnet_brain.json is not a JSON object",)),
    Case("no_circuit_anywhere", "mcap", drop_custom_config, ("does not say the run's circuit",)),
    Case("scale_not_a_number", "mcap", side_config(scale="big"), ("scale = 'big', not a number",)),
    Case("circuit_unknown", "sqlite3", side_config(circuit="monza"), ("circuit cannot be loaded", "monza")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_bag_is_refused_in_one_line(case, sound_bags, tmp_path, capsys):
    root, _ = sound_bags
    bag = tmp_path / case.id
    shutil.copytree(root / case.storage, bag)
    case.damage(bag)
    out = tmp_path / "out"
    rc, stdout, stderr = run_cli(["analyze", bag, "--out", out], capsys)
    assert_clean_failure(rc, stdout, stderr, str(bag), *case.fragments, out_dir=out)
    assert not out.exists() or not any(out.iterdir()), f"output written for a refused bag: {list(out.iterdir())}"


def test_not_a_directory(tmp_path, sound_bags, capsys):
    root, _ = sound_bags
    for path in (tmp_path / "nowhere", storage_file(root / "mcap")):
        rc, stdout, stderr = run_cli(["analyze", path], capsys)
        assert_clean_failure(rc, stdout, stderr, str(path))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sound_bag_is_analyzed(storage, sound_bags, capsys):
    """The bags the cases start from are sound: their refusals are the damage's doing."""
    root, _ = sound_bags
    rc, stdout, stderr = run_cli(["analyze", root / storage, "--json"], capsys)
    assert rc == 0, stderr
    assert '"completed_pct": 100.0' in stdout and "recovered" not in stderr


# --------------------------------------------------------------------------- recovering an MCAP without its index


def written_odometry(count):
    t, xy, _ = lap_positions(laps=3)
    assert count <= len(t)
    return t[:count], xy[:count]


def assert_prefix_of_written(run):
    """The recovered odometry is exactly the first messages written, in order, nothing invented."""
    t, xy = written_odometry(len(run.t))
    assert len(run.t) > 0
    np.testing.assert_array_equal(run.xy, xy)
    np.testing.assert_allclose(run.t, t, atol=1e-9)


def test_bag_of_a_killed_recorder_is_recovered(tmp_path, capsys):
    bag = tmp_path / "killed"
    here = Path(__file__).resolve().parent
    code = (
        f"import sys; sys.path[:0] = [{str(here)!r}, {str(here.parents[1])!r}]; "
        f"import test_bad_bags as t; t.write_run_bag({str(bag)!r}, laps=3, kill_before_close=True)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    written = int(proc.stdout.split()[-1])
    assert not (bag / "metadata.yaml").exists()  # killed before closing: no metadata, no MCAP summary

    rc, stdout, stderr = run_cli(["analyze", bag, "--json"], capsys)
    assert rc == 0, stderr
    line = [x for x in stderr.splitlines() if "recovered" in x]
    assert len(line) == 1 and str(bag) in line[0] and "error" not in line[0].lower(), stderr
    recovered = int(line[0].split("recovered ")[1].split()[0])
    run = read_bag(bag)
    # Every intact message is a clock or odometry message written in order; the unflushed chunk is lost.
    assert 0 < recovered < written
    assert recovered == run.clock_count + len(run.t) + len(run.statuses)
    assert abs(run.clock_count - len(run.t)) <= 1
    assert_prefix_of_written(run)
    assert f"recovered {recovered} intact messages" in run.recovered
    assert '"bag_recovered"' in stdout


def test_bag_without_metadata_recovers_every_message_and_the_same_metrics(sound_bags, tmp_path, capsys):
    root, written = sound_bags
    intact_metrics, _, _ = metrics_from_bag(root / "mcap")
    bag = tmp_path / "no_metadata"
    shutil.copytree(root / "mcap", bag)
    (bag / "metadata.yaml").unlink()
    rc, stdout, stderr = run_cli(["analyze", bag, "--out", tmp_path / "out"], capsys)
    assert rc == 0, stderr
    assert f"recovered {written['mcap']} intact messages" in stderr
    metrics, _, run = metrics_from_bag(bag)
    assert run.recovered
    for key, value in intact_metrics.items():
        assert metrics[key] == value, key
    assert (tmp_path / "out").is_dir() and any((tmp_path / "out").glob("*.json"))


def test_truncated_mcap_recovers_a_growing_prefix(sound_bags, tmp_path):
    root, written = sound_bags
    size = storage_file(root / "mcap").stat().st_size
    counts = []
    for fraction in (0.5, 0.75, 0.9, 0.999):
        bag = tmp_path / f"cut_{fraction}"
        shutil.copytree(root / "mcap", bag)
        truncate_storage(int(size * fraction))(bag)
        run = read_bag(bag)
        assert f"(metadata.yaml lists {written['mcap']})" in run.recovered
        assert_prefix_of_written(run)
        counts.append(run.clock_count + len(run.t) + len(run.statuses))
    # Cut inside the data, the partial chunk is lost; cut in the summary only, every message survives.
    assert counts == sorted(counts) and counts[0] < written["mcap"]
    assert counts[-1] == written["mcap"]
