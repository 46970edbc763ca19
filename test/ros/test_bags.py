"""rosbag2 bags: writing/reading with rosbags (MCAP and sqlite3), metrics from a bag, the bag_recorder node
(real DDS, its own ROS_DOMAIN_ID), SIGTERM mid-run, and `analyze` reproducing the metrics."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("rosbags")

from conftest import REPO_ROOT, run_cli, unique_domain_id

from pilotnet_brain.bags.reader import bag_summary, read_bag
from pilotnet_brain.bags.score import metrics_from_bag, run_record_from_arrays
from pilotnet_brain.bags.writer import CUSTOM_DATA_KEY, BagWriter, read_side_file, typestore
from pilotnet_brain.errors import BagError
from pilotnet_brain.evaluation.metrics import METRIC_KEYS, compute_metrics
from pilotnet_brain.interfaces import BRAIN_STATS_FIELDS, DEFAULT_TOPICS, DEFAULT_TYPES

REPO = REPO_ROOT
STORAGES = ("mcap", "sqlite3")


# --------------------------------------------------------------------------- synthetic messages (rosbags)


def _types():
    return typestore().types


def _stamp(t):
    T = _types()
    sec = int(math.floor(t))
    return T["builtin_interfaces/msg/Time"](sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _header(t, frame="odom"):
    return _types()["std_msgs/msg/Header"](stamp=_stamp(t), frame_id=frame)


def _vec(x=0.0, y=0.0, z=0.0):
    return _types()["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)


def _twist(v, w):
    return _types()["geometry_msgs/msg/Twist"](linear=_vec(v), angular=_vec(z=w))


def _odom(t, x, y, yaw, v):
    T = _types()
    pose = T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)),
    )
    return T["nav_msgs/msg/Odometry"](
        header=_header(t),
        child_frame_id="base_link",
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=_twist(v, 0.0), covariance=np.zeros(36)),
    )


def _image(t, h=6, w=8, seed=0):
    data = np.random.default_rng(seed).integers(0, 255, h * w * 3, dtype=np.uint8)
    return _types()["sensor_msgs/msg/Image"](
        header=_header(t, "F1ROS/cameraL"), height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3, data=data
    )


def _multiarray(values):
    T = _types()
    return T["std_msgs/msg/Float64MultiArray"](
        layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0), data=np.asarray(values, dtype=float)
    )


def _write_circle_run(
    path,
    storage,
    csv_path,
    radius,
    offset,
    speed,
    dt=0.05,
    laps=1.1,
    stats=None,
    end="lap_completed",
    frames=123,
    wall=7.5,
):
    """A car driving a circle of radius `radius + offset` at `speed`, ccw, from the circuit's start."""
    cfg = {
        "circuit": str(csv_path),
        "direction": "ccw",
        "brain": "synthetic",
        "scale": 1.0,
        "reference_spacing_m": 1.0,
        "clock": "lockstep",
    }
    r = radius + offset
    n = int(laps * 2 * math.pi * r / speed / dt)
    t = np.arange(n) * dt
    phi = speed * t / r  # start at angle 0 = the CSV's first row, ccw
    xy = np.column_stack([r * np.cos(phi), r * np.sin(phi)])
    stats = stats if stats is not None else [(i * 0.1, 5.0, 20.0, 33.3, 15.0) for i in range(40)]
    T = _types()
    with BagWriter(path, storage, cfg) as w:
        for role in ("camera", "cmd_vel", "odom", "clock", "stats", "status", "sim_stats"):
            w.add_topic(DEFAULT_TOPICS[role], DEFAULT_TYPES[role])
        w.write_msg(DEFAULT_TOPICS["status"], 1, T["std_msgs/msg/String"](data="running"))
        for i, ti in enumerate(t):
            ns = 1_000_000_000 + int(ti * 1e9)
            w.write_msg(DEFAULT_TOPICS["clock"], ns, T["rosgraph_msgs/msg/Clock"](clock=_stamp(ti)))
            w.write_msg(DEFAULT_TOPICS["odom"], ns + 1, _odom(ti, *xy[i], phi[i] + math.pi / 2, speed))
            if i % 10 == 0:
                w.write_msg(DEFAULT_TOPICS["camera"], ns + 2, _image(ti, seed=i))
                w.write_msg(DEFAULT_TOPICS["cmd_vel"], ns + 3, _twist(speed, speed / r))
        for j, row in enumerate(stats):
            w.write_msg(DEFAULT_TOPICS["stats"], 10**9 + j, _multiarray(row))
        end_ns = 1_000_000_000 + int(t[-1] * 1e9) + 10
        w.write_msg(DEFAULT_TOPICS["sim_stats"], end_ns, _multiarray([t[-1], frames, wall, 0, 1, 2, 0]))
        w.write_msg(DEFAULT_TOPICS["status"], end_ns + 1, T["std_msgs/msg/String"](data=end))
    return cfg, t, xy


@pytest.fixture(scope="module")
def circle_csv(tmp_path_factory):
    """A TUM-format circle of radius 50 m, 7 m wide, counter-clockwise, first row at (50, 0)."""
    path = tmp_path_factory.mktemp("tracks") / "circle50.csv"
    a = np.arange(720) * 2 * math.pi / 720
    rows = ["# x_m,y_m,w_tr_right_m,w_tr_left_m"] + [
        f"{50 * math.cos(x):.6f},{50 * math.sin(x):.6f},3.5,3.5" for x in a
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


# --------------------------------------------------------------------------- writing / reading


@pytest.mark.parametrize("storage", STORAGES)
def test_write_and_read_back_every_message_type(tmp_path, storage):
    from rosbags.highlevel import AnyReader

    path = tmp_path / "bag"
    img = _image(1.5, seed=3)
    with BagWriter(path, storage, {"circuit": "simple_circuit", "direction": "cw"}) as w:
        for role in ("camera", "cmd_vel", "odom", "clock"):
            w.add_topic(DEFAULT_TOPICS[role], DEFAULT_TYPES[role])
        for i in range(5):
            t = 1.0 + 0.1 * i
            w.write_msg(DEFAULT_TOPICS["camera"], 10 + i, img)
            w.write_msg(DEFAULT_TOPICS["cmd_vel"], 20 + i, _twist(1.0 + i, -0.5))
            w.write_msg(DEFAULT_TOPICS["odom"], 30 + i, _odom(t, i, 2 * i, 0.3, 4.0))
            w.write_msg(DEFAULT_TOPICS["clock"], 40 + i, _types()["rosgraph_msgs/msg/Clock"](clock=_stamp(t)))
    meta = (path / "metadata.yaml").read_text()
    assert f"storage_identifier: {storage}" in meta
    assert list(path.glob("*.mcap" if storage == "mcap" else "*.db3"))

    with AnyReader([path], default_typestore=typestore()) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        assert {c.msgtype for c in reader.connections} == {
            DEFAULT_TYPES[r] for r in ("camera", "cmd_vel", "odom", "clock")
        }
        assert all(c.msgcount == 5 for c in reader.connections)
        assert "float64 x" in by_topic[DEFAULT_TOPICS["cmd_vel"]].msgdef.data  # full definitions stored
        msgs = {}
        for conn, ts, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
    image = msgs[DEFAULT_TOPICS["camera"]][0]
    assert (image.height, image.width, image.encoding) == (6, 8, "rgb8")
    assert np.array_equal(image.data, img.data)
    assert [m.linear.x for m in msgs[DEFAULT_TOPICS["cmd_vel"]]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    odom = msgs[DEFAULT_TOPICS["odom"]][3]
    assert (odom.pose.pose.position.x, odom.pose.pose.position.y) == (3.0, 6.0)
    assert msgs[DEFAULT_TOPICS["clock"]][4].clock.nanosec == 400_000_000

    summary = bag_summary(path)
    assert json.loads(summary["custom_data"][CUSTOM_DATA_KEY]) == {"circuit": "simple_circuit", "direction": "cw"}
    run = read_bag(path)
    assert run.config == {"circuit": "simple_circuit", "direction": "cw"}
    assert len(run.t) == 5 and run.camera_count == 5 and run.clock_count == 5
    assert np.allclose(run.yaw, 0.3) and np.allclose(run.speed, 4.0)


def test_unknown_storage_and_type_are_refused(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        BagWriter(tmp_path / "a", "rosbag1")
    with BagWriter(tmp_path / "b") as w, pytest.raises(ValueError, match="unknown"):
        w.add_topic("/x", "no_pkg/msg/Nothing")


# --------------------------------------------------------------------------- metrics from a bag


@pytest.mark.parametrize("storage", STORAGES)
def test_metrics_from_a_circle_have_the_known_answers(tmp_path, circle_csv, storage):
    radius, offset, speed = 50.0, 0.4, 8.0
    cfg, t, xy = _write_circle_run(tmp_path / "bag", storage, circle_csv, radius, offset, speed)
    m, record, run = metrics_from_bag(tmp_path / "bag")

    lap = 2 * math.pi * (radius + offset) / speed
    assert m["completed_pct"] == 100.0
    assert m["lap_time_s"] == pytest.approx(lap, rel=1e-3)
    assert m["average_speed_mps"] == pytest.approx(speed, rel=1e-3)  # chords: a hair under the arc
    assert m["position_deviation_mae_m"] == pytest.approx(offset, abs=0.01)
    assert m["mean_inference_time_ms"] == pytest.approx(5.0)
    assert m["brain_iteration_frequency_hz"] == pytest.approx(50.0)
    assert m["frame_rate_hz"] == pytest.approx(123 / 7.5)  # sim_node's final stats
    assert (m["wall_time_s"], m["end_reason"], m["off_track_events"]) == (7.5, "lap_completed", 0)
    assert m["brain"] == "synthetic" and m["circuit"] == "circle50"
    assert len(run.command_t) == len(run.commands) > 0
    # Same RunRecord construction as from the arrays directly (times as the stamps carry them: ns).
    assert np.allclose(run.t, t, atol=1e-9) and np.array_equal(run.xy, xy)
    direct = compute_metrics(
        run_record_from_arrays(
            circuit=str(circle_csv),
            direction="ccw",
            brain="synthetic",
            t=run.t,
            xy=xy,
            iteration_wall_s=np.full(40, 20.0) / 1e3,
            inference_s=np.full(40, 5.0) / 1e3,
            frame_count=123,
            wall_time_s=7.5,
            end_reason="lap_completed",
        )
    )
    assert m == direct


def test_bag_without_run_metadata_is_explained(tmp_path):
    with BagWriter(tmp_path / "bag") as w:
        w.add_topic("/F1ROS/odom", "nav_msgs/msg/Odometry")
        w.write_msg("/F1ROS/odom", 1, _odom(0.0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="circuit and direction"):
        metrics_from_bag(tmp_path / "bag")
    with pytest.raises(BagError, match="not a rosbag2"):
        read_bag(tmp_path)


def _labelled_stats(label, values):
    T = _types()
    dim = T["std_msgs/msg/MultiArrayDimension"](label=label, size=len(values), stride=len(values))
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
    return T["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.asarray(values, dtype=float))


def test_brain_stats_are_read_as_brain_node_publishes_them_and_other_fields_are_refused(tmp_path):
    published = (1.5, 5.0, 20.0, 33.3, 15.0)
    with BagWriter(tmp_path / "ok", config={"circuit": "simple_circuit", "direction": "ccw"}) as w:
        w.add_topic(DEFAULT_TOPICS["stats"], DEFAULT_TYPES["stats"])
        w.write_msg(DEFAULT_TOPICS["stats"], 1, _labelled_stats(",".join(BRAIN_STATS_FIELDS), published))
    assert read_bag(tmp_path / "ok").brain_stats.tolist() == [list(published)]

    with BagWriter(tmp_path / "other", config={"circuit": "simple_circuit", "direction": "ccw"}) as w:
        w.add_topic(DEFAULT_TOPICS["stats"], DEFAULT_TYPES["stats"])
        w.write_msg(DEFAULT_TOPICS["stats"], 1, _labelled_stats("inference_s,iteration_s", (0.005, 0.02)))
    with pytest.raises(ValueError, match="labelled 'inference_s,iteration_s'"):
        read_bag(tmp_path / "other")


def test_analyze_cli_on_bags(tmp_path, circle_csv, capsys):
    from pilotnet_brain.cli.main import main

    _write_circle_run(tmp_path / "b1", "mcap", circle_csv, 50.0, 0.4, 8.0)
    _write_circle_run(tmp_path / "b2", "sqlite3", circle_csv, 50.0, -0.3, 6.0, end="off_track", laps=0.5)
    assert main(["analyze", str(tmp_path / "b1"), str(tmp_path / "b2"), "--out", str(tmp_path / "out"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["completed_pct"] for r in rows][0] == 100.0 and rows[1]["end_reason"] == "off_track"
    assert rows[1]["off_track_events"] == 1 and rows[1]["lap_time_s"] is None
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"summary.md", "summary.csv", "summary.png"} <= names
    assert sum(n.endswith("_timeseries.png") for n in names) == 2
    assert sum(n.endswith(".json") for n in names) == 2
    rc, _, err = run_cli(["analyze", tmp_path / "nothing"], capsys)
    assert rc == 2 and "nothing" in err


# --------------------------------------------------------------------------- the recorder node (real DDS)


def _recorder(bag, domain, *params):
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
    argv = [
        sys.executable,
        "-m",
        "pilotnet_brain.ros.bag_recorder",
        "--ros-args",
        "-p",
        f"output:={bag}",
        "-p",
        "query_nodes:=false",
    ]
    for p in params:
        argv += ["-p", p]
    return subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class _Publishers:
    """In-process rclpy publishers on every recorded topic, in their own context and domain."""

    def __init__(self, domain):
        import rclpy
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float64MultiArray, String

        self.rclpy = rclpy
        self.ctx = rclpy.context.Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node("fake_graph", context=self.ctx)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        T = DEFAULT_TOPICS
        self.pubs = {
            "camera": self.node.create_publisher(Image, T["camera"], qos_profile_sensor_data),
            "cmd_vel": self.node.create_publisher(Twist, T["cmd_vel"], 100),
            "odom": self.node.create_publisher(Odometry, T["odom"], 100),
            "clock": self.node.create_publisher(Clock, T["clock"], 100),
            "stats": self.node.create_publisher(Float64MultiArray, T["stats"], 100),
            "sim_stats": self.node.create_publisher(Float64MultiArray, T["sim_stats"], latched),
            "status": self.node.create_publisher(String, T["status"], latched),
        }
        self.msgs = {
            "Image": Image,
            "Twist": Twist,
            "Odometry": Odometry,
            "Clock": Clock,
            "Float64MultiArray": Float64MultiArray,
            "String": String,
        }
        self.sent = {k: [] for k in self.pubs}

    def wait_matched(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() >= 1 for p in self.pubs.values()):
                time.sleep(0.3)
                return True
            time.sleep(0.05)
        return False

    def publish(self, role, msg):
        import copy

        self.pubs[role].publish(msg)
        self.sent[role].append(copy.deepcopy(msg))

    def drive(self, centerline, stride=5, dt=0.1):
        """Odometry along `centerline` (every `stride`-th point), and the rest, like sim/brain nodes."""
        M = self.msgs
        self.publish("status", M["String"](data="running"))
        pts = centerline[::stride]
        t = np.arange(len(pts)) * dt
        for i, (x, y) in enumerate(pts):
            sec, nsec = int(t[i]), int(round((t[i] - int(t[i])) * 1e9))
            clock = M["Clock"]()
            clock.clock.sec, clock.clock.nanosec = sec, nsec
            self.publish("clock", clock)
            odom = M["Odometry"]()
            odom.header.stamp = clock.clock
            odom.pose.pose.position.x, odom.pose.pose.position.y = float(x), float(y)
            odom.twist.twist.linear.x = 5.0
            self.publish("odom", odom)
            if i % 3 == 0:
                img = M["Image"](height=4, width=4, encoding="rgb8", step=12, data=bytes(range(48)))
                img.header.stamp = clock.clock
                self.publish("camera", img)
                self.publish("cmd_vel", M["Twist"]())
                self.publish("stats", M["Float64MultiArray"](data=[t[i], 4.0 + i % 3, 10.0 + i % 5, 33.0, 6.0]))
            time.sleep(0.002)
        stamps = [(int(x), int(round((x - int(x)) * 1e9))) for x in t]
        return np.array([sec + nsec * 1e-9 for sec, nsec in stamps]), pts  # times as the stamps carry them

    def close(self):
        self.node.destroy_node()
        self.rclpy.shutdown(context=self.ctx)


@pytest.fixture
def ros():
    pytest.importorskip("rclpy")
    made = []

    def make(domain):
        made.append(_Publishers(domain))
        return made[-1]

    yield make
    for p in made:
        p.close()


def offered_qos_profiles(bag) -> dict:
    """topic -> its offered_qos_profiles in metadata.yaml (rosbag2 stores them as a YAML string)."""
    import yaml

    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    out = {}
    for entry in info["topics_with_message_count"]:
        profiles = entry["topic_metadata"]["offered_qos_profiles"]
        out[entry["topic_metadata"]["name"]] = yaml.safe_load(profiles) if isinstance(profiles, str) else profiles
    return out


def _recorded(bag, topic, msg_class):
    """The bag's messages on `topic`, its CDR bytes (as written) deserialized by rclpy."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [deserialize_message(bytes(raw), msg_class) for _, _, raw in reader.messages(connections=conns)]


@pytest.mark.parametrize("storage", STORAGES)
def test_recorder_node_records_every_topic_and_stops_at_episode_end(tmp_path, ros, storage):
    from pilotnet_brain.sim.circuits import load_circuit

    domain = unique_domain_id(0 if storage == "mcap" else 1)
    bag = tmp_path / "bag"
    proc = _recorder(
        bag,
        domain,
        f"storage:={storage}",
        "circuit:=simple_circuit",
        "direction:=ccw",
        "brain:=fake",
        "end_grace_s:=0.5",
    )
    pubs = ros(domain)
    try:
        assert pubs.wait_matched(), "the recorder's subscriptions did not match"
        t, pts = pubs.drive(load_circuit("simple_circuit").centerline)
        pubs.publish("sim_stats", pubs.msgs["Float64MultiArray"](data=[t[-1], 40.0, 3.0, 0.0, 1.0, 2.0, 0.0]))
        pubs.publish("status", pubs.msgs["String"](data="lap_completed"))
        out, _ = proc.communicate(timeout=30)  # stops by itself after the episode's end
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    summary = bag_summary(bag)
    assert summary["storage"] == storage
    for role in DEFAULT_TOPICS:  # every message, as sent (the recorder's queues are KEEP_ALL)
        sent = pubs.sent[role]
        assert _recorded(bag, DEFAULT_TOPICS[role], type(sent[0])) == sent, role
    # offered_qos_profiles: the publishers' QoS (the camera's is best effort), not the recorder's
    offered = offered_qos_profiles(bag)
    for role, topic in DEFAULT_TOPICS.items():
        (qos,) = offered[topic]
        assert qos["reliability"] == ("best_effort" if role == "camera" else "reliable"), role
        assert qos["durability"] == ("transient_local" if role in ("status", "sim_stats") else "volatile"), role

    # The recorder's metrics (side file) = analyze = compute_metrics on the published arrays.
    side = read_side_file(bag)
    assert side["config"]["circuit"] == "simple_circuit" and side["metrics"] is not None
    stats = np.asarray([(4.0 + i % 3, 10.0 + i % 5) for i in range(0, len(pts), 3)])
    expected = compute_metrics(
        run_record_from_arrays(
            circuit="simple_circuit",
            direction="ccw",
            brain="fake",
            t=t,
            xy=pts,
            iteration_wall_s=stats[:, 1] / 1e3,
            inference_s=stats[:, 0] / 1e3,
            frame_count=40,
            wall_time_s=3.0,
            end_reason="lap_completed",
        )
    )
    assert expected["completed_pct"] == 100.0
    assert side["metrics"] == expected

    from pilotnet_brain.cli.main import main

    assert main(["analyze", str(bag), "--out", str(tmp_path / "analysis")]) == 0
    analyzed = json.loads((tmp_path / "analysis" / "simple_circuit_ccw_fake.json").read_text())
    assert {k: analyzed[k] for k in METRIC_KEYS} == {k: expected[k] for k in METRIC_KEYS}


def test_sigterm_mid_run_leaves_a_readable_bag(tmp_path, ros):
    from rosbags.highlevel import AnyReader

    domain = unique_domain_id(2)
    bag = tmp_path / "bag"
    proc = _recorder(bag, domain, "circuit:=simple_circuit", "direction:=ccw")
    pubs = ros(domain)
    try:
        assert pubs.wait_matched(), "the recorder's subscriptions did not match"
        from pilotnet_brain.sim.circuits import load_circuit

        pubs.drive(load_circuit("simple_circuit").centerline[:200], stride=2)  # no end status: mid-run
        time.sleep(0.5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "bag closed" in out
    with AnyReader([bag], default_typestore=typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        odom = [
            reader.deserialize(raw, c.msgtype).pose.pose.position.x
            for c, _, raw in reader.messages()
            if c.topic == DEFAULT_TOPICS["odom"]
        ]
    assert counts[DEFAULT_TOPICS["odom"]] == len(pubs.sent["odom"]) == 100 == len(odom)
    m, _, _ = metrics_from_bag(bag)
    assert m["end_reason"] == "" and 0 < m["completed_pct"] < 100
