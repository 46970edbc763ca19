"""numpy <-> sensor_msgs/Image conversion: round trips, and a specific error for every bad image."""

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("sensor_msgs.msg")

from pilotnet_brain.errors import ImageError
from pilotnet_brain.ros import image_conversion as ic


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


@pytest.mark.skipif(not ic.HAVE_CV_BRIDGE, reason="ROS cv_bridge is not installed (not on PyPI)")
def test_cv_bridge_and_numpy_paths_agree():
    img = frame(seed=3)
    for enc in ("rgb8", "bgr8"):
        a = ic.image_to_msg(img, encoding=enc, use_cv_bridge=True)
        b = ic.image_to_msg(img, encoding=enc, use_cv_bridge=False)
        assert bytes(a.data) == bytes(b.data) and a.step == b.step
        np.testing.assert_array_equal(ic.msg_to_rgb(a, use_cv_bridge=True), ic.msg_to_rgb(b, use_cv_bridge=False))


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


@pytest.mark.parametrize(
    "case", ["mono8", "wrong_size", "empty", "unknown_encoding", "step_mismatch", "data_size_mismatch"]
)
def test_bad_images_raise_specific_errors(case):
    msg, error, words = bad_messages()[case]
    with pytest.raises(error, match=words) as info:
        ic.msg_to_rgb(msg, use_cv_bridge=False)
    assert isinstance(info.value, ImageError)


def test_any_size_when_not_checked():
    msg = ic.image_to_msg(frame(240, 320), use_cv_bridge=False)
    assert ic.msg_to_rgb(msg, expected_size=None, use_cv_bridge=False).shape == (240, 320, 3)
