"""Torch-free inference: the ONNX and LiteRT backends drive (`pilotnet-brain drive`) and serve (brain_node,
started from their presets) with torch not importable at all.

The variants are built here, with torch. Each check then runs in a subprocess whose PYTHONPATH starts with
a `torch` package that raises ImportError when imported, so any `import torch` on the path fails.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO_ROOT, unique_domain_id

torch = pytest.importorskip("torch")

from pilotnet_brain import interfaces as topics
from pilotnet_brain.brains.pilotnet import PilotNetBrain
from pilotnet_brain.data.calibration import OptimizeData
from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.export.registry import METHODS, builder_for
from pilotnet_brain.model.labels import DEFAULT_LABEL_RANGES
from pilotnet_brain.model.network import PilotNet
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.model.weights import save_model
from pilotnet_brain.ros.environment import ros_environment
from pilotnet_brain.runtime.catalog import BACKENDS

TORCH_FREE = ("onnx_int8", "tflite_fp32")
BLOCKER_MESSAGE = "torch is blocked in this test"
#: Metrics of a lock-step run with a fixed latency that do not depend on wall-clock time.
SIMULATED_METRICS = (
    "brain",
    "completed_pct",
    "completed_distance_m",
    "position_deviation_mae_m",
    "off_track_events",
    "sim_time_s",
    "end_reason",
    "checkpoints_reached",
)


@pytest.fixture(scope="module")
def variant_files(tmp_path_factory):
    """name -> a small variant built from a random PilotNet (skipped where its runtime is not installed)."""
    directory = tmp_path_factory.mktemp("torch_free")
    torch.manual_seed(0)
    fp32 = save_model(PilotNet().eval(), directory / "pilotnet_fp32.safetensors", DEFAULT_LABEL_RANGES)
    data = OptimizeData(calibration=np.random.default_rng(0).random((8, *INPUT_SHAPE), dtype=np.float32))
    built = {}

    def build(name):
        if name not in built:
            method = METHODS[name]
            try:
                built[name] = builder_for(method)(fp32, directory / method.filename, data)
            except BackendUnavailable as error:
                pytest.skip(f"{name}: {error}")
        return built[name]

    return build


@pytest.fixture(scope="module")
def torch_free_env(tmp_path_factory):
    blocker = tmp_path_factory.mktemp("no_torch") / "torch"
    blocker.mkdir()
    (blocker / "__init__.py").write_text(f"raise ImportError({BLOCKER_MESSAGE!r})\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(blocker.parent), os.environ.get("PYTHONPATH")) if p)
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and BLOCKER_MESSAGE in probe.stderr  # the blocker really blocks
    return env


def drive(env, *args):
    command = [sys.executable, "-m", "pilotnet_brain.cli.main", "drive", "--brain", "pilotnet", "--quiet", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_the_torch_free_backends_are_the_ones_without_torch_files():
    assert all(not BACKENDS[name].needs_torch for name in TORCH_FREE)


@pytest.mark.parametrize("name", TORCH_FREE)
def test_drive_runs_without_torch_and_drives_as_with_it(name, variant_files, torch_free_env):
    model = variant_files(name)
    args = ("--backend", name, "--model", str(model), "--timeout", "2", "--latency-ms", "2", "--json")
    free = drive(torch_free_env, *args)
    # exit code 1: the run ended (time-out) before a lap, as a random network's run does
    assert free.returncode in (0, 1) and "Traceback" not in free.stderr, free.stderr[-3000:]
    metrics = json.loads(free.stdout)
    assert metrics["brain"] == f"pilotnet_{name}" and metrics["sim_time_s"] >= 2.0 and metrics["checkpoints_reached"]
    with_torch = json.loads(drive(dict(os.environ), *args).stdout)
    assert {k: metrics[k] for k in SIMULATED_METRICS} == {k: with_torch[k] for k in SIMULATED_METRICS}


def test_drive_without_a_model_file_names_the_file_in_one_line(torch_free_env):
    result = drive(torch_free_env, "--backend", "onnx_int8")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pilotnet_int8_qdq.onnx" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.ros
@pytest.mark.parametrize("name", TORCH_FREE)
def test_brain_node_serves_its_preset_without_torch(name, variant_files, torch_free_env):
    """brain_node from config/brains/<preset>.yaml, torch blocked, over real DDS: it reaches ready and
    answers a camera image with the command the brain computes for it."""
    rclpy = pytest.importorskip("rclpy")
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float64MultiArray

    from pilotnet_brain.ros.image_conversion import image_to_msg
    from pilotnet_brain.sim.circuits import load_circuit
    from pilotnet_brain.sim.world import World

    model = variant_files(name)
    frame = World(load_circuit("simple_circuit")).render()
    expected = PilotNetBrain(model_path=model, backend=name).step(frame, 0.0).command

    domain_id = unique_domain_id()
    env = {**ros_environment(domain_id), "PYTHONPATH": torch_free_env["PYTHONPATH"]}
    preset = REPO_ROOT / "config" / "brains" / f"{BACKENDS[name].preset}.yaml"
    node_command = [sys.executable, "-m", "pilotnet_brain.ros.brain_node", "--ros-args", "--params-file", str(preset)]
    node_command += ["-p", f"model_path:={model}"]
    proc = subprocess.Popen(node_command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    probe = rclpy.create_node("torch_free_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    commands, stats = [], []
    camera = probe.create_publisher(Image, topics.CAMERA_TOPIC, qos_profile_sensor_data)
    probe.create_subscription(Twist, topics.CMD_VEL_TOPIC, commands.append, 10)
    probe.create_subscription(Float64MultiArray, topics.BRAIN_STATS_TOPIC_RESOLVED, stats.append, 10)
    try:
        deadline = time.monotonic() + 90
        # brain_node subscribes the camera last: a subscriber there means it is ready.
        while camera.get_subscription_count() == 0 and proc.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert camera.get_subscription_count() > 0, f"brain_node never became ready (exit code {proc.poll()})"
        msg = image_to_msg(frame, stamp_s=1.0)
        while not (commands and stats) and proc.poll() is None and time.monotonic() < deadline:
            camera.publish(msg)  # best effort: sent again until answered
            end = time.monotonic() + 0.5
            while not (commands and stats) and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
        assert commands and stats, f"no answer to a camera image (exit code {proc.poll()})"
    finally:
        executor.shutdown()
        probe.destroy_node()
        rclpy.shutdown(context=context)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert f"brain pilotnet_{name} ready" in stderr
    twist = commands[0]
    assert math.isclose(twist.linear.x, expected.v, abs_tol=1e-6) and math.isclose(
        twist.angular.z, expected.w, abs_tol=1e-6
    )
    assert len(stats[0].data) == len(topics.BRAIN_STATS_FIELDS) and stats[0].data[0] == 1.0  # the frame's stamp


def test_the_threads_parameter_reaches_onnx_runtime(variant_files):
    """brain_node's `threads` sets the inference threads of every backend, not only torch's."""
    from pilotnet_brain.brains.from_parameters import build_brain
    from pilotnet_brain.config import BRAIN_NODE

    model = str(variant_files("onnx_int8"))
    for threads in (1, 2):
        params = BRAIN_NODE.resolve(
            {"brain": "pilotnet", "backend": "onnx_int8", "model_path": model, "threads": threads}
        )
        session = build_brain(params).backend.session
        assert session.get_session_options().intra_op_num_threads == threads
