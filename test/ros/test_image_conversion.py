"""numpy <-> sensor_msgs/Image conversion: round trips, and a specific error for every bad image.

Both paths run here: our numpy conversion, and ROS's cv_bridge: the installed one where ROS provides it,
and everywhere the stand-in in test/stand_ins (the upstream API and behaviour; cv_bridge is not on PyPI).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("sensor_msgs.msg")

import test_nodes
from rclpy.executors import SingleThreadedExecutor
from test_nodes import params, spin_until

from pilotnet_brain.errors import ImageError
from pilotnet_brain.ros import image_conversion as ic

STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"
ctx = test_nodes.ctx  # the fixture: an rclpy context on a private domain, with the launcher's DDS settings


def _cv_bridge_modules():
    return [name for name in sys.modules if name == "cv_bridge" or name.startswith("cv_bridge.")]


@pytest.fixture
def stand_in_cv_bridge(monkeypatch):
    """cv_bridge 'installed' from test/stand_ins, found by image_conversion's own import of it."""
    for name in _cv_bridge_modules():
        monkeypatch.delitem(sys.modules, name)  # a ROS install's cv_bridge comes back afterwards
    monkeypatch.syspath_prepend(str(STAND_INS))
    bridge = ic._cv_bridge()
    assert bridge is not None and Path(sys.modules["cv_bridge"].__file__).is_relative_to(STAND_INS)
    monkeypatch.setattr(ic, "_BRIDGE", bridge)
    monkeypatch.setattr(ic, "HAVE_CV_BRIDGE", True)
    yield bridge
    for name in _cv_bridge_modules():
        del sys.modules[name]


@pytest.fixture(params=["stand_in", "installed"])
def cv_bridge_path(request):
    """The cv_bridge path of image_conversion, with the stand-in, and with ROS's cv_bridge where installed."""
    if request.param == "installed":
        if not ic.HAVE_CV_BRIDGE or Path(sys.modules["cv_bridge"].__file__).is_relative_to(STAND_INS):
            pytest.skip("ROS cv_bridge is not installed (not on PyPI); the stand-in runs this test")
        return ic._BRIDGE
    return request.getfixturevalue("stand_in_cv_bridge")


def frame(h=480, w=640, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb8_round_trip_and_stamp():
    img = frame()
    msg = ic.image_to_msg(img, stamp_s=12.34, frame_id="cam", use_cv_bridge=False)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 480, 640, 1920)
    assert msg.header.frame_id == "cam" and abs(ic.stamp_to_s(msg.header.stamp) - 12.34) < 1e-9
    np.testing.assert_array_equal(ic.msg_to_rgb(msg, use_cv_bridge=False), img)


def test_bgr8_is_converted_to_rgb():
    img = frame(seed=1)
    msg = ic.image_to_msg(img, encoding="bgr8", use_cv_bridge=False)
    assert msg.encoding == "bgr8"
    assert bytes(msg.data[:3]) == bytes(img[0, 0, ::-1])
    np.testing.assert_array_equal(ic.msg_to_rgb(msg, use_cv_bridge=False), img)


def test_row_padding_is_accepted():
    img = frame(seed=2)
    msg = ic.image_to_msg(img, use_cv_bridge=False)
    padded = np.zeros((480, 1920 + 64), np.uint8)
    padded[:, :1920] = img.reshape(480, 1920)
    msg.step, msg.data = 1920 + 64, padded.tobytes()
    np.testing.assert_array_equal(ic.msg_to_rgb(msg, use_cv_bridge=False), img)


def test_cv_bridge_and_numpy_paths_agree(cv_bridge_path):
    img = frame(seed=3)
    for enc in ("rgb8", "bgr8"):
        a = ic.image_to_msg(img, encoding=enc, use_cv_bridge=True)
        b = ic.image_to_msg(img, encoding=enc, use_cv_bridge=False)
        assert (
            (a.height, a.width, a.encoding, a.step) == (b.height, b.width, b.encoding, b.step) == (480, 640, enc, 1920)
        )
        assert bytes(a.data) == bytes(b.data)
        np.testing.assert_array_equal(ic.msg_to_rgb(a, use_cv_bridge=True), img)
        np.testing.assert_array_equal(ic.msg_to_rgb(b, use_cv_bridge=False), img)


def _cdr_padding(raw: bytes, field: bytes, after: int = 0) -> set:
    """The alignment bytes that follow `field` (and `after` one-byte fields) up to the next 4-byte field."""
    end = raw.index(field) + len(field) + after
    return set(range(end, end + (-(end - 4)) % 4))  # CDR aligns from the end of the 4-byte encapsulation header


def test_camera_frames_serialize_as_rclpy_serializes_the_image():
    """sim_node publishes serialized frames: the bytes are rclpy's for the same Image, and they read back."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    frame = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    serializer = ic.CameraFrameSerializer("F1ROS/cameraL")
    for stamp in (0.0, 12.34, 1e5 + 0.01):
        raw = serializer.serialize(frame, stamp)
        expected = ic.image_to_msg(frame, stamp_s=stamp, frame_id="F1ROS/cameraL", use_cv_bridge=False)
        reference = serialize_message(expected)
        # The same bytes but for the alignment bytes, which rclpy leaves unset (whatever the memory held).
        assert len(raw) == len(reference)
        padding = _cdr_padding(reference, b"F1ROS/cameraL\x00") | _cdr_padding(reference, b"rgb8\x00", 1)
        assert [i for i in range(len(raw)) if raw[i] != reference[i] and i not in padding] == []
        back = deserialize_message(raw, Image)
        assert back == expected
        assert np.array_equal(ic.msg_to_rgb(back), frame) and ic.stamp_to_s(back.header.stamp) == pytest.approx(stamp)
    with pytest.raises(ImageError, match="expected an HxWx3 uint8 RGB array, got float64"):
        serializer.serialize(frame.astype(float), 0.0)


@pytest.mark.parametrize("path", ["numpy", "cv_bridge"])
def test_the_given_message_is_filled_and_returned(path, request):
    """sim_node passes its one Image and publishes THAT message: it must hold the frame on both paths."""
    from sensor_msgs.msg import Image

    if path == "cv_bridge":
        request.getfixturevalue("stand_in_cv_bridge")
    img = frame(seed=4)
    reused = Image()
    for stamp_s in (1.5, 2.0):  # twice: the second call refills the same message
        out = ic.image_to_msg(img, stamp_s=stamp_s, frame_id="cam", msg=reused, use_cv_bridge=path == "cv_bridge")
        assert out is reused
        assert (reused.height, reused.width, reused.encoding, reused.step) == (480, 640, "rgb8", 1920)
        assert len(reused.data) == 480 * 1920 and reused.header.frame_id == "cam"
        assert ic.stamp_to_s(reused.header.stamp) == stamp_s
        np.testing.assert_array_equal(ic.msg_to_rgb(reused), img)


def test_stand_in_cv_bridge_follows_the_upstream_api(stand_in_cv_bridge):
    """What image_conversion relies on, as ros-perception/vision_opencv cv_bridge/core.py does it."""
    from cv_bridge import CvBridgeError
    from std_msgs.msg import Header

    bridge, img = stand_in_cv_bridge, frame(seed=5)
    header = Header(frame_id="cam")
    a = bridge.cv2_to_imgmsg(img, encoding="bgr8", header=header)
    assert a is not bridge.cv2_to_imgmsg(img, encoding="bgr8")  # a NEW message each call
    assert (a.encoding, a.step, a.header.frame_id) == ("bgr8", 1920, "cam")
    assert bridge.cv2_to_imgmsg(img).encoding == "8UC3"  # passthrough: the array's OpenCV type
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(a), img)  # passthrough: the message's channel order
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(a, desired_encoding="rgb8"), img[..., ::-1])
    with pytest.raises(CvBridgeError, match="incompatible type 8UC3"):
        bridge.cv2_to_imgmsg(img, encoding="mono8")
    with pytest.raises(TypeError, match="not a numpy array"):
        bridge.cv2_to_imgmsg(img.tolist(), encoding="rgb8")
    a.encoding = "yuv420"
    with pytest.raises(CvBridgeError, match="yuv420"):
        bridge.imgmsg_to_cv2(a, desired_encoding="rgb8")


def test_cv_bridge_on_the_path_is_picked_up_at_import():
    """A fresh process with the stand-in importable: image_conversion uses it, and both directions work."""
    code = (
        "import numpy as np, cv_bridge\n"
        "from pilotnet_brain.ros import image_conversion as ic\n"
        "img = np.random.default_rng(6).integers(0, 256, (480, 640, 3), dtype=np.uint8)\n"
        "msg = ic.image_to_msg(img, encoding='bgr8')\n"
        "assert (msg.width, msg.height, len(msg.data)) == (640, 480, 921600)\n"
        "assert (ic.msg_to_rgb(msg) == img).all()\n"
        "print(ic.HAVE_CV_BRIDGE, type(ic._BRIDGE).__module__, cv_bridge.__file__)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STAND_INS), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    have, module, path = r.stdout.split()
    assert (have, module) == ("True", "cv_bridge.core") and Path(path).is_relative_to(STAND_INS)


def test_sim_node_drives_brain_node_with_cv_bridge_present(ctx, stand_in_cv_bridge):
    """Over real DDS, with cv_bridge importable: sim_node's frames arrive whole and the brain drives on them."""
    from sensor_msgs.msg import Image

    from pilotnet_brain.ros.brain_node import BrainNode
    from pilotnet_brain.ros.qos import NEWEST_FRAME
    from pilotnet_brain.ros.sim_node import SimNode

    sim = SimNode(
        context=ctx,
        parameter_overrides=params(
            circuit="simple_circuit", clock="lockstep", timeout=2.0, linger=0.0, startup_timeout=20.0
        ),
    )
    brain = BrainNode(context=ctx, parameter_overrides=params(brain="explicit"))
    seen = []
    probe = brain.create_subscription(
        Image,
        sim.image_pub.topic_name,
        lambda m: seen.append((m.width, m.height, m.encoding, m.step, len(m.data))),
        NEWEST_FRAME,
    )
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(sim)
    ex.add_node(brain)
    try:
        sim.start()
        assert spin_until(ex, sim.finished.is_set, 40.0), "simulation did not finish"
        assert brain.bad_images == 0, "the brain rejected sim_node's frames"
        assert brain.frames >= 55 and sim.lockstep_timeouts == 0  # 2 s at 30 Hz, every frame answered
        assert seen and set(seen) == {(640, 480, "rgb8", 1920, 921600)}
        assert sim.world.progress_m > 10.0  # the car drove
    finally:
        sim.stop()
        ex.shutdown()
        brain.destroy_subscription(probe)
        sim.destroy_node()
        brain.destroy_node()


def bad_messages():
    from sensor_msgs.msg import Image

    good = ic.image_to_msg(frame(), use_cv_bridge=False)

    def variant(**fields):
        m = Image()
        m.height, m.width, m.encoding, m.step, m.data = good.height, good.width, good.encoding, good.step, good.data
        for k, v in fields.items():
            setattr(m, k, v)
        return m

    mono = np.zeros((480, 640), np.uint8)
    small = frame(240, 320)
    return {
        "mono8": (variant(encoding="mono8", step=640, data=mono.tobytes()), ic.MonochromeImageError, "colour"),
        "wrong_size": (variant(height=240, width=320, step=960, data=small.tobytes()), ic.ImageSizeError, "640x480"),
        "empty": (variant(data=b""), ic.EmptyImageError, "empty"),
        "unknown_encoding": (variant(encoding="yuv422"), ic.UnsupportedEncodingError, "yuv422"),
        "step_mismatch": (variant(step=1900), ic.ImageLayoutError, "step"),
        "data_size_mismatch": (variant(data=good.data[:-3].tobytes()), ic.ImageLayoutError, "bytes"),
    }


@pytest.mark.parametrize("path", ["numpy", "cv_bridge"])
@pytest.mark.parametrize(
    "case", ["mono8", "wrong_size", "empty", "unknown_encoding", "step_mismatch", "data_size_mismatch"]
)
def test_bad_images_raise_specific_errors(case, path, request):
    if path == "cv_bridge":
        request.getfixturevalue("stand_in_cv_bridge")
    msg, error, words = bad_messages()[case]
    with pytest.raises(error, match=words) as info:
        ic.msg_to_rgb(msg, use_cv_bridge=path == "cv_bridge")
    assert isinstance(info.value, ImageError)


def test_any_size_when_not_checked():
    msg = ic.image_to_msg(frame(240, 320), use_cv_bridge=False)
    assert ic.msg_to_rgb(msg, expected_size=None, use_cv_bridge=False).shape == (240, 320, 3)
