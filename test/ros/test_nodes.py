"""brain_node and sim_node over REAL DDS (no mocks): each test has its own rclpy context and ROS_DOMAIN_ID."""

import inspect
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from conftest import unique_domain_id
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter


def camera_frame():
    from pilotnet_brain.sim.circuits import load_circuit
    from pilotnet_brain.sim.world import World

    return World(load_circuit("simple_circuit")).render()


@pytest.fixture
def ctx():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=unique_domain_id())
    yield context
    rclpy.shutdown(context=context)


def params(**kw):
    return [Parameter(k, value=v) for k, v in kw.items()]


def spin_until(executor, condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return condition()


def test_brain_node_drives_sim_node_lockstep(ctx):
    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.sim_node import SimNode

    sim = SimNode(
        context=ctx,
        parameter_overrides=params(
            circuit="simple_circuit", clock="lockstep", timeout=3.0, linger=0.0, startup_timeout=20.0
        ),
    )
    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit"))
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(sim)
    ex.add_node(brain)
    try:
        sim.start()
        assert spin_until(ex, sim.finished.is_set, 40.0), "simulation did not finish"
        assert sim.end_reason == "timeout"
        assert brain.frames >= 85 and sim.frame_count >= 90  # 3 s at 30 Hz
        assert sim.lockstep_timeouts == 0  # every frame got its command
        assert len(sim.latencies) == sim.frame_count
        assert sim.world.progress_m > 15.0  # the car moved along the road
        assert abs(sim.world.lateral_offset_m) < 1.5
    finally:
        sim.stop()
        ex.shutdown()
        sim.destroy_node()
        brain.destroy_node()


class _Harness:
    """A test node: publishes camera images, records the brain's commands."""

    def __init__(self, ctx):
        from geometry_msgs.msg import Twist
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        self.node = rclpy.create_node("harness", context=ctx)
        self.pub = self.node.create_publisher(Image, "/F1ROS/cameraL/image_raw", qos_profile_sensor_data)
        self.cmds = []
        self.node.create_subscription(
            Twist, "/F1ROS/cmd_vel", lambda m: self.cmds.append((time.monotonic(), m.linear.x, m.angular.z)), 10
        )


def test_watchdog_publishes_zero_once_when_images_stop(ctx):
    from pilotnet_brain.ros.brain_node import BrainNode, watchdog_period_s
    from pilotnet_brain.ros.image_conversion import image_to_msg

    watchdog = 0.3
    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=watchdog))
    h = _Harness(ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(brain)
    ex.add_node(h.node)
    msg = image_to_msg(camera_frame(), frame_id="cam")
    try:
        assert spin_until(
            ex, lambda: h.pub.get_subscription_count() > 0 and brain.cmd_pub.get_subscription_count() > 0, 10
        )
        last_pub = None
        t_end = time.monotonic() + 0.6
        i = 0
        while time.monotonic() < t_end:  # 30 Hz for 0.6 s
            msg.header.stamp.sec, msg.header.stamp.nanosec = 0, i * 33_000_000
            h.pub.publish(msg)
            last_pub = time.monotonic()
            i += 1
            spin_until(ex, lambda: False, 1 / 30)
        spin_until(ex, lambda: False, watchdog + 0.7)
        driving = [c for c in h.cmds if c[0] <= last_pub + 0.05]
        assert driving and all(c[1] > 0 for c in driving), "the brain drove while images came"
        zeros = [c for c in h.cmds if c[0] > last_pub + 0.05]
        assert len(zeros) == 1, f"expected one zero command per stale period, got {zeros}"
        t_zero, v, w = zeros[0]
        assert v == 0.0 and w == 0.0
        assert t_zero - last_pub <= watchdog + 0.25
        assert t_zero - last_pub >= watchdog_period_s(watchdog)  # just before the deadline, never earlier
    finally:
        ex.shutdown()
        brain.destroy_node()
        h.node.destroy_node()


def _bad_messages():
    from sensor_msgs.msg import Image

    from pilotnet_brain.ros.image_conversion import image_to_msg

    good = image_to_msg(camera_frame())

    def variant(**fields):
        m = Image()
        m.height, m.width, m.encoding, m.step, m.data = good.height, good.width, good.encoding, good.step, good.data
        for k, v in fields.items():
            setattr(m, k, v)
        return m

    return good, {
        "mono8": variant(encoding="mono8", step=640, data=np.zeros(480 * 640, np.uint8).tobytes()),
        "wrong_size": variant(height=240, width=320, step=960, data=np.zeros(240 * 960, np.uint8).tobytes()),
        "empty": variant(data=b""),
        "unknown_encoding": variant(encoding="yuv422"),
        "step_mismatch": variant(step=1900),
    }


def test_bad_images_are_skipped_logged_once_and_node_keeps_running(ctx, capfd):
    from pilotnet_brain.ros.brain_node import BrainNode

    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=0.0))
    h = _Harness(ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(brain)
    ex.add_node(h.node)
    good, bad = _bad_messages()
    try:
        assert spin_until(
            ex, lambda: h.pub.get_subscription_count() > 0 and brain.cmd_pub.get_subscription_count() > 0, 10
        )
        for n, (name, msg) in enumerate(bad.items(), start=1):
            for _ in range(20):  # best effort: resend until the node has seen it
                h.pub.publish(msg)
                if spin_until(ex, lambda: brain.bad_images >= n, 0.25):
                    break
            assert brain.bad_images == n, f"{name} was not rejected"
        assert brain.frames == 0 and not h.cmds
        for _ in range(20):
            h.pub.publish(good)
            if spin_until(ex, lambda: len(h.cmds) > 0, 0.25):
                break
        assert brain.frames >= 1 and h.cmds and h.cmds[-1][1] > 0, "the node stopped driving after bad images"
    finally:
        ex.shutdown()
        brain.destroy_node()
        h.node.destroy_node()
    err = capfd.readouterr().err
    assert err.count("skipping bad image") == 1, err  # one log per burst
    assert "monochrome" in err and "good image again after 5 bad image(s) skipped" in err


def test_nan_command_becomes_stop_with_error(ctx, capfd):
    from pilotnet_brain.control import BrainOutput, Command
    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.image_conversion import image_to_msg

    class NaNBrain:
        name = "nan"

        def reset(self):
            pass

        def step(self, image, stamp):
            return BrainOutput(Command(float("nan"), float("inf")), 0.001)

    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=0.0))
    brain.brain = NaNBrain()
    try:
        brain.on_image(image_to_msg(camera_frame()))
        assert (brain._twist.linear.x, brain._twist.angular.z) == (0.0, 0.0)
        assert brain.frames == 1
    finally:
        brain.destroy_node()
    assert "non-finite command" in capfd.readouterr().err


def test_brain_node_estimates_the_camera_yaw_after_each_command_and_says_so(ctx, capfd):
    """PilotNet's camera-yaw sampling runs after the command is out (deferred), with the same result."""
    pytest.importorskip("torch")
    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.image_conversion import image_to_msg
    from pilotnet_brain.sim.circuits import load_circuit
    from pilotnet_brain.sim.conditions import parse_conditions
    from pilotnet_brain.sim.world import SimConfig, World

    turned = World(load_circuit("montreal"), SimConfig(conditions=parse_conditions("camera_yaw=1"))).render()
    node = BrainNode(context=ctx, parameter_overrides=params(brain="pilotnet", watchdog_timeout=0.0, threads=1))
    try:
        assert node.brain.defer_camera_yaw
        estimator = node.brain.yaw_estimator
        # One still frame: the network steers at it, the car never turns.
        estimator.max_turn_rate = estimator.max_mean_turn_rate = math.inf
        msg = image_to_msg(turned)
        frames = estimator.straight_frames + estimator.every * (estimator.min_samples - 1)  # a sample every 5th
        for i in range(frames):
            msg.header.stamp.sec = i
            node.on_image(msg)
        assert node.frames == frames and estimator.samples == estimator.min_samples
        assert math.degrees(node.brain.camera_yaw_rad) == pytest.approx(5.0, abs=0.3)
    finally:
        node.destroy_node()
    err = capfd.readouterr().err
    assert err.count("frames turned back before inference") == 1, err


def test_unknown_parameter_is_a_clear_error(ctx):
    from pilotnet_brain.errors import ConfigError
    from pilotnet_brain.ros.brain_node import BrainNode

    with pytest.raises(ConfigError, match="unknown parameter.*max_speed"):
        BrainNode(context=ctx, parameter_overrides=params(brain="explicit", max_speed=3.0))


def test_yaml_with_unknown_parameter_is_refused(tmp_path):
    from pilotnet_brain.errors import ConfigError
    from pilotnet_brain.ros.params import load_brain_parameters

    bad = tmp_path / "bad.yaml"
    bad.write_text("brain_node:\n  ros__parameters:\n    brain: explicit\n    max_sped: 3.0\n")
    with pytest.raises(ConfigError, match="max_sped"):
        load_brain_parameters(bad)


def test_an_integer_for_a_float_parameter_is_accepted_and_descriptors_come_from_the_schema(ctx):
    from pilotnet_brain.config import BRAIN_NODE
    from pilotnet_brain.ros.brain_node import BrainNode

    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", max_v=10, watchdog_timeout=1))
    try:
        assert brain.max_v == 10.0 and isinstance(brain.max_v, float)
        assert brain.params["watchdog_timeout"] == 1.0 and isinstance(brain.params["watchdog_timeout"], float)
        descriptor = brain.describe_parameter("max_v")
        assert descriptor.description == BRAIN_NODE["max_v"].doc
        assert descriptor.additional_constraints == "a float >= 0"
        assert descriptor.floating_point_range[0].from_value == 0.0 and descriptor.read_only
        assert brain.describe_parameter("threads").integer_range[0].from_value == 0
    finally:
        brain.destroy_node()


def test_command_line_integer_for_a_float_reaches_the_simulator():
    """`-p timeout:=60` arrives as an INTEGER parameter: no InvalidParameterTypeException, 60.0 s."""
    from pilotnet_brain.ros.sim_node import SimNode

    context = rclpy.Context()
    rclpy.init(
        context=context,
        domain_id=unique_domain_id(),
        args=["--ros-args", "-p", "timeout:=60", "-p", "latency:=0", "-p", "camera_rate:=15"],
    )
    try:
        sim = SimNode(context=context)
        assert (sim.config.timeout_s, sim.config.latency_s, sim.config.camera_rate_hz) == (60.0, 0.0, 15.0)
        assert sim.timeout_s == 60.0
        sim.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize(
    ("node", "ros_args", "message"),
    [
        ("brain_node", ["-p", "max_v:=-5"], "max_v=-5 is out of range (allowed: a float >= 0)"),
        ("brain_node", ["-p", "max_v:=true"], "max_v=true is not a float (allowed: a float >= 0)"),
        ("sim_node", ["-p", "timeout:=-5"], "timeout=-5 is out of range (allowed: a float >= 0)"),
        ("metrics_node", ["-p", "direction:=up"], "direction='up' is not allowed (allowed: one of ccw, cw)"),
        ("bag_recorder", ["-p", "camera_stride:=0"], "camera_stride=0 is out of range (allowed: an integer >= 1)"),
        ("brain_node", ["--params-file", "NAN_FILE"], "max_v=nan is not finite (allowed: a float >= 0)"),
    ],
)
def test_bad_parameter_values_exit_2_with_one_line(tmp_path, node, ros_args, message):
    nan_file = tmp_path / "nan.yaml"
    nan_file.write_text("brain_node:\n  ros__parameters:\n    max_v: .nan\n")
    ros_args = [str(nan_file) if a == "NAN_FILE" else a for a in ros_args]
    env = dict(os.environ, ROS_DOMAIN_ID=str(unique_domain_id()))
    r = subprocess.run(
        [sys.executable, "-m", f"pilotnet_brain.ros.{node}", "--ros-args", *ros_args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2, output
    assert [line for line in output if message in line] == output, output  # one line, and only that
    assert len(output) == 1 and f"cannot start: node {node}: {message}" in output[0]
    assert list(tmp_path.iterdir()) == [nan_file]  # nothing was created (bag_recorder: no bag directory)


def test_cuda_without_gpu_refuses_to_start_cleanly():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the refusal cannot be shown here")
    env = dict(os.environ, ROS_DOMAIN_ID=str(unique_domain_id()))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pilotnet_brain.ros.brain_node",
            "--ros-args",
            "-p",
            "brain:=pilotnet",
            "-p",
            "device:=cuda",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "cannot start" in r.stderr and "cuda" in r.stderr and "Traceback" not in r.stderr


def test_lockstep_over_dds_with_fixed_latency_matches_the_embedded_simulator(ctx):
    """With a fixed latency the ROS lock-step run is bit-identical to simulator.run_episode."""
    from pilotnet_brain.brains import make_brain
    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.sim_node import SimNode
    from pilotnet_brain.sim.circuits import load_circuit
    from pilotnet_brain.sim.world import SimConfig, World, run_episode

    log = run_episode(
        World(load_circuit("montmelo", direction="cw"), SimConfig(latency_s=0.02, timeout_s=2.0)),
        make_brain("explicit"),
    )
    sim = SimNode(
        context=ctx,
        parameter_overrides=params(
            circuit="montmelo", direction="cw", clock="lockstep", latency=0.02, timeout=2.0, linger=0.0
        ),
    )
    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit"))
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(sim)
    ex.add_node(brain)
    try:
        sim.start()
        assert spin_until(ex, sim.finished.is_set, 40.0)
        assert sim.lockstep_timeouts == 0
        s = sim.world.state
        assert (s.x, s.y) == tuple(log.record.xy[-1]) and s.yaw == log.yaw[-1]
    finally:
        sim.stop()
        ex.shutdown()
        sim.destroy_node()
        brain.destroy_node()


def test_brain_node_overhead_benchmark_runs():
    """The node adds little beyond the brain (decode is zero-copy). Loose bound: the CI machine is shared."""
    from pilotnet_brain.ros.brain_node import benchmark_overhead

    r = benchmark_overhead("explicit", frames=60)
    assert r["frames"] == 60 and r["decode_ms"] < 0.5
    assert 0 <= r["overhead_ms"] < 3.0 and r["iteration_frequency_hz"] > 50


def test_a_node_whose_ros_teardown_hangs_still_exits_with_its_code(tmp_path):
    """run_node gives DDS teardown TEARDOWN_TIMEOUT_S, then exits with the node's code (its work is done)."""
    script = tmp_path / "stuck.py"
    script.write_text(
        "import time\n"
        "from rclpy.node import Node\n"
        "from pilotnet_brain.ros import node_runtime\n"
        "node_runtime.TEARDOWN_TIMEOUT_S = 1.0\n"
        "class Stuck(Node):\n"
        "    def destroy_node(self):\n"
        "        time.sleep(60)\n"
        "raise SystemExit(node_runtime.run_node('stuck', lambda: Stuck('stuck'),\n"
        "                                       done=lambda node: True, exit_code=lambda node: 3))\n"
    )
    env = dict(os.environ, ROS_DOMAIN_ID=str(unique_domain_id()))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert time.monotonic() - t0 < 20
    assert "teardown did not finish in 1 s; exiting with code 3" in proc.stderr


def test_a_stuck_teardown_ends_before_either_launcher_kills_the_node():
    """After SIGINT a node ignores signals while it tears down: its own time limit must end first, or a
    launcher's SIGKILL turns a finished run's exit code into -9."""
    from pilotnet_brain.ros import launcher, node_runtime, processes

    ros2_launch_sigterm_timeout_s = 5.0  # launch.actions.ExecuteProcess: sigterm_timeout default '5'
    grace = inspect.signature(launcher.run_graph).parameters["sigint_timeout"].default
    assert grace == processes.SIGINT_GRACE_S
    assert node_runtime.TEARDOWN_TIMEOUT_S + 1.0 <= min(grace, ros2_launch_sigterm_timeout_s)


# --- Gazebo conventions: newest frame only, use_sim_time, camera_info, odom -> base_link ------------------
def test_camera_subscription_keeps_only_the_newest_frame(ctx):
    """Frames that queued up while the brain was busy are dropped: it answers the newest one only."""
    from rclpy.qos import ReliabilityPolicy
    from std_msgs.msg import Float64MultiArray

    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.image_conversion import image_to_msg

    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=0.0))
    assert brain.image_sub.qos_profile.depth == 1
    assert brain.image_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    h = _Harness(ctx)
    answered = []
    h.node.create_subscription(Float64MultiArray, "/brain_node/stats", lambda m: answered.append(m.data[0]), 100)
    brain_ex, harness_ex = SingleThreadedExecutor(context=ctx), SingleThreadedExecutor(context=ctx)
    brain_ex.add_node(brain)
    harness_ex.add_node(h.node)
    msg = image_to_msg(camera_frame(), frame_id="cam")
    try:
        assert spin_until(harness_ex, lambda: h.pub.get_subscription_count() > 0, 10)
        assert spin_until(brain_ex, lambda: brain.stats_pub.get_subscription_count() > 0, 10)
        for second in range(1, 5):  # a burst while the brain is not taking frames (not spinning)
            msg.header.stamp.sec = second
            h.pub.publish(msg)
        time.sleep(0.5)  # delivered into the subscription's queue by DDS meanwhile
        spin_until(brain_ex, lambda: False, 0.5)
        assert spin_until(harness_ex, lambda: answered, 5)
        assert brain.frames == 1 and answered == [4.0], answered
    finally:
        brain_ex.shutdown()
        harness_ex.shutdown()
        brain.destroy_node()
        h.node.destroy_node()


def test_with_use_sim_time_the_watchdog_runs_on_simulated_time(ctx):
    """Images stop while /clock stands still (Gazebo paused): no stop. /clock moves on: one zero command."""
    from rosgraph_msgs.msg import Clock

    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.image_conversion import image_to_msg, set_stamp

    watchdog = 0.3
    brain = BrainNode(
        context=ctx, parameter_overrides=params(brain="explicit", watchdog_timeout=watchdog, use_sim_time=True)
    )
    h = _Harness(ctx)
    clock_pub = h.node.create_publisher(Clock, "/clock", 10)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(brain)
    ex.add_node(h.node)

    def set_sim_time(t):
        clock = Clock()
        set_stamp(clock.clock, t)
        clock_pub.publish(clock)
        return spin_until(ex, lambda: abs(brain.get_clock().now().nanoseconds * 1e-9 - t) < 1e-6, 5)

    msg = image_to_msg(camera_frame(), frame_id="cam")
    try:
        assert spin_until(ex, lambda: h.pub.get_subscription_count() > 0 and clock_pub.get_subscription_count() > 0, 10)
        assert set_sim_time(100.0), "brain_node does not follow /clock"
        for _ in range(20):  # best effort: until a frame got through
            h.pub.publish(msg)
            if spin_until(ex, lambda: h.cmds, 0.25):
                break
        assert h.cmds and h.cmds[-1][1] > 0
        driving = len(h.cmds)
        spin_until(ex, lambda: False, 3 * watchdog)  # wall time passes, simulated time does not
        assert len(h.cmds) == driving and not brain._stale
        assert set_sim_time(100.0 + 2 * watchdog)
        assert spin_until(ex, lambda: len(h.cmds) > driving, 2.0), "no zero command once simulated time moved on"
        assert h.cmds[driving][1:] == (0.0, 0.0) and brain._stale
    finally:
        ex.shutdown()
        brain.destroy_node()
        h.node.destroy_node()


def test_camera_info_is_the_pinhole_camera_of_the_simulator():
    import math

    from pilotnet_brain.ros.sim_node import camera_info_msg
    from pilotnet_brain.sim.camera import CameraModel

    camera = CameraModel()
    info = camera_info_msg(camera, "F1ROS/cameraL")
    assert (info.width, info.height, info.header.frame_id) == (640, 480, "F1ROS/cameraL")
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    k = np.asarray(info.k).reshape(3, 3)
    assert 2 * math.degrees(math.atan(info.width / 2 / k[0, 0])) == pytest.approx(60.0)  # horizontal FOV
    assert k[1, 1] == k[0, 0] and (k[0, 2], k[1, 2]) == (320.0, 240.0) and k[2].tolist() == [0, 0, 1]
    assert np.asarray(info.r).reshape(3, 3).tolist() == np.eye(3).tolist()
    assert np.asarray(info.p).reshape(3, 4).tolist() == np.hstack([k, np.zeros((3, 1))]).tolist()
    # K maps what the renderer draws: a ground point 10 m ahead, 2 m left lands where project() puts it
    ground = np.array([[10.0, 2.0]])
    height, forward, pitch = camera.height_m, camera.forward_m, camera.pitch_rad
    x_cam = -ground[0, 1]  # camera x to the right
    along = ground[0, 0] - forward
    y_cam = height * math.cos(pitch) - along * math.sin(pitch)  # down, in the pitched camera frame
    z_cam = along * math.cos(pitch) + height * math.sin(pitch)
    u, v, w = k @ [x_cam, y_cam, z_cam]
    assert (u / w, v / w) == pytest.approx(tuple(camera.project(ground)[0]))


def test_odom_to_base_link_transform():
    import math

    from geometry_msgs.msg import TransformStamped

    from pilotnet_brain.interfaces import BASE_FRAME_ID, ODOM_FRAME_ID
    from pilotnet_brain.ros.sim_node import odom_transform

    t = odom_transform(12.5, -3.0, math.pi / 2, 7.25)
    assert isinstance(t, TransformStamped)
    assert (t.header.frame_id, t.child_frame_id) == (ODOM_FRAME_ID, BASE_FRAME_ID) == ("odom", "base_link")
    assert (t.header.stamp.sec, t.header.stamp.nanosec) == (7, 250_000_000)
    tr, q = t.transform.translation, t.transform.rotation
    assert (tr.x, tr.y, tr.z) == (12.5, -3.0, 0.0)
    assert (q.x, q.y) == (0.0, 0.0) and (q.z, q.w) == pytest.approx((math.sqrt(0.5), math.sqrt(0.5)))
    yaw = 2 * math.atan2(q.z, q.w)  # the heading comes back out
    assert yaw == pytest.approx(math.pi / 2)


def test_sim_node_publishes_what_a_gazebo_car_does(ctx, capfd):
    """camera_info with every frame (same stamp, camera frame_id), odometry and /clock; /tf when tf2_msgs is
    installed, else one start-up line saying why not."""
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CameraInfo, Image

    from pilotnet_brain.interfaces import CAMERA_FRAME_ID, GAZEBO_TOPICS, TF_TOPIC
    from pilotnet_brain.ros import sim_node as sim_module
    from pilotnet_brain.ros.qos import SENSOR_DATA

    sim = sim_module.SimNode(context=ctx, parameter_overrides=params(circuit="simple_circuit"))
    published = {p.topic_name: p.msg_type for p in sim.publishers}
    for role, (topic, msg_type) in GAZEBO_TOPICS.items():
        if role == "cmd_vel":
            assert topic in {s.topic_name for s in sim.subscriptions}
        elif role != "tf" or sim_module.TFMessage is not None:
            assert f"{published[topic].__module__.split('.')[0]}/msg/{published[topic].__name__}" == msg_type, role
    if sim_module.TFMessage is None:
        assert TF_TOPIC not in published
    h = rclpy.create_node("harness", context=ctx)
    got = {"image": [], "info": [], "odom": []}
    h.create_subscription(Image, GAZEBO_TOPICS["camera"][0], lambda m: got["image"].append(m.header), SENSOR_DATA)
    h.create_subscription(CameraInfo, GAZEBO_TOPICS["camera_info"][0], lambda m: got["info"].append(m), SENSOR_DATA)
    h.create_subscription(Odometry, GAZEBO_TOPICS["odom"][0], lambda m: got["odom"].append(m), 10)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(sim)
    ex.add_node(h)
    try:
        assert spin_until(ex, lambda: sim.camera_info_pub.get_subscription_count() > 0, 10)
        for i in range(20):  # best effort: until one frame and its camera_info arrived
            sim._publish_frame(sim.world.render(), 1.5 + i)
            sim._publish_odom_and_clock()
            if spin_until(ex, lambda: got["image"] and got["info"] and got["odom"], 0.25):
                break
        image_stamps = {(s.stamp.sec, s.stamp.nanosec) for s in got["image"]}
        info = got["info"][0]
        assert (info.header.stamp.sec, info.header.stamp.nanosec) in image_stamps
        assert info.header.frame_id == CAMERA_FRAME_ID and (info.width, info.height) == (640, 480)
        assert got["odom"][0].child_frame_id == "base_link"
    finally:
        ex.shutdown()
        sim.destroy_node()
        h.destroy_node()
    err = capfd.readouterr().err
    if sim_module.TFMessage is None:
        assert err.count("not publishing /tf") == 1 and "tf2_msgs is missing" in err
    else:
        assert "not publishing /tf" not in err
