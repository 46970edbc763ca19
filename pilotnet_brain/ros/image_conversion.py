"""numpy RGB frames <-> sensor_msgs/Image.

`image_to_msg` / `msg_to_rgb` use ROS `cv_bridge` when it imports (a ROS install) and the package's own
numpy conversion otherwise; both give the same array and message (the tests run both paths, with a
stand-in cv_bridge from test/stand_ins where ROS's is not installed). Every message is validated first,
by our own code, so the errors are the same either way:

    mono8 / mono16        -> MonochromeImageError   (the brains need colour)
    unknown encoding      -> UnsupportedEncodingError
    no data               -> EmptyImageError
    step < width*3, or len(data) != step*height -> ImageLayoutError (step / size mismatch)
    not 480x640           -> ImageSizeError (expected_size=None accepts any size)

All are subclasses of `preprocessing.ImageError`. Accepted encodings: rgb8 and bgr8 (converted to RGB).
`msg.data` is given an array.array (a reused message's own, filled in place: one memcpy): assigning an
ndarray or memoryview makes rclpy check every element (20-40 ms for 640x480).

sim_node publishes its frames serialized (`CameraFrameSerializer`, rosbags' CDR writer, bytes identical to
rclpy's), skipping rclpy's Python -> C conversion (~0.4 ms per 640x480 frame); subscribers see an Image as
ever. (The brain keeps the typed subscription: a raw take through rmw_fastrtps measured 2-3 ms slower.)
"""

from __future__ import annotations

import array

import numpy as np

from pilotnet_brain.bags.writer import typestore
from pilotnet_brain.errors import ImageError
from pilotnet_brain.model.preprocessing import FRAME_HEIGHT, FRAME_WIDTH

COLOUR_ENCODINGS = ("rgb8", "bgr8")
MONO_ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1")
EXPECTED_SIZE = (FRAME_HEIGHT, FRAME_WIDTH)


class ImageConversionError(ImageError):
    """A sensor_msgs/Image the brain cannot use."""


class UnsupportedEncodingError(ImageConversionError):
    pass


class MonochromeImageError(UnsupportedEncodingError):
    pass


class EmptyImageError(ImageConversionError):
    pass


class ImageLayoutError(ImageConversionError):
    """step / data size do not match width, height and encoding."""


class ImageSizeError(ImageConversionError):
    pass


def _cv_bridge():
    try:
        from cv_bridge import CvBridge  # noqa: PLC0415  (optional: cv_bridge)
    except Exception:  # not installed, or its C++ part fails to load
        return None
    return CvBridge()


_BRIDGE = _cv_bridge()
HAVE_CV_BRIDGE = _BRIDGE is not None


def check_image_msg(msg, expected_size=EXPECTED_SIZE) -> None:
    """Raise a specific ImageConversionError if `msg` is not a usable colour image."""
    enc = msg.encoding
    if enc in MONO_ENCODINGS:
        raise MonochromeImageError(
            f"image encoding {enc!r} is monochrome: the brain needs a colour image ({' or '.join(COLOUR_ENCODINGS)})"
        )
    if enc not in COLOUR_ENCODINGS:
        raise UnsupportedEncodingError(f"unsupported image encoding {enc!r}; expected {' or '.join(COLOUR_ENCODINGS)}")
    n = len(msg.data)
    if n == 0 or msg.width == 0 or msg.height == 0:
        raise EmptyImageError(f"empty image ({msg.width}x{msg.height}, {n} bytes of data)")
    if msg.step < msg.width * 3:
        raise ImageLayoutError(f"step {msg.step} < width*3 = {msg.width * 3} for {enc}")
    if n != msg.step * msg.height:
        raise ImageLayoutError(
            f"data has {n} bytes, expected step*height = {msg.step}*{msg.height} = {msg.step * msg.height}"
        )
    if expected_size is not None and (msg.height, msg.width) != tuple(expected_size):
        raise ImageSizeError(
            f"image is {msg.width}x{msg.height}, the brain needs {expected_size[1]}x{expected_size[0]}"
        )


def _numpy_to_rgb(msg) -> np.ndarray:
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    rows = buf.reshape(msg.height, msg.step)
    img = rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(img[..., ::-1])
    if msg.step != msg.width * 3:
        return np.ascontiguousarray(img)
    return img  # zero-copy, read-only view of the message's buffer


def msg_to_rgb(msg, expected_size=EXPECTED_SIZE, use_cv_bridge: bool | None = None) -> np.ndarray:
    """sensor_msgs/Image (rgb8 | bgr8) -> HxWx3 uint8 RGB array (may be a read-only view)."""
    check_image_msg(msg, expected_size)
    if use_cv_bridge is None:
        use_cv_bridge = HAVE_CV_BRIDGE
    if use_cv_bridge and _BRIDGE is not None:
        return np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    return _numpy_to_rgb(msg)


def _check_rgb_frame(rgb) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ImageError(
            f"expected an HxWx3 uint8 RGB array, got "
            f"{getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}"
        )


def image_to_msg(
    rgb: np.ndarray,
    stamp_s: float | None = None,
    frame_id: str = "",
    encoding: str = "rgb8",
    msg=None,
    use_cv_bridge: bool | None = None,
):
    """HxWx3 uint8 RGB array -> sensor_msgs/Image in `encoding` (rgb8 | bgr8).

    With `msg` given, that message is filled (its header kept) and returned, on both paths.
    """
    from sensor_msgs.msg import Image  # noqa: PLC0415  (optional: ROS messages)

    _check_rgb_frame(rgb)
    if encoding not in COLOUR_ENCODINGS:
        raise UnsupportedEncodingError(f"cannot encode {encoding!r}; use {' or '.join(COLOUR_ENCODINGS)}")
    pixels = rgb if encoding == "rgb8" else rgb[..., ::-1]
    if use_cv_bridge is None:
        use_cv_bridge = HAVE_CV_BRIDGE
    if use_cv_bridge and _BRIDGE is not None:
        # cv2_to_imgmsg always builds a NEW message: fill the caller's, which it may publish (sim_node does).
        built = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(pixels), encoding=encoding)
        if msg is None:
            out = built
        else:
            out = msg
            out.height, out.width, out.encoding = built.height, built.width, built.encoding
            out.is_bigendian, out.step, out.data = built.is_bigendian, built.step, built.data
    else:
        out = msg if msg is not None else Image()
        out.height, out.width = int(rgb.shape[0]), int(rgb.shape[1])
        out.encoding = encoding
        out.is_bigendian = 0
        out.step = out.width * 3
        _fill_data(out, pixels)
    if stamp_s is not None:
        set_stamp(out.header.stamp, stamp_s)
    if frame_id:
        out.header.frame_id = frame_id
    return out


def _fill_data(msg, pixels: np.ndarray) -> None:
    """msg.data <- the pixels: into the message's own array.array when it has the size (a reused
    message, as sim_node's), else a new one (array.array is what rclpy stores for uint8[])."""
    data = msg.data
    if isinstance(data, array.array) and data.typecode == "B" and len(data) == pixels.size:
        np.copyto(np.frombuffer(data, dtype=np.uint8).reshape(pixels.shape), pixels)
    else:
        data = array.array("B", np.ascontiguousarray(pixels).tobytes())
    msg.data = data


IMAGE_TYPE = "sensor_msgs/msg/Image"


class CameraFrameSerializer:
    """RGB frames -> CDR-serialized sensor_msgs/Image (rgb8) for `Publisher.publish(bytes)`: one copy of the
    pixels, against rclpy's Python -> C conversion and serialization (two copies and a per-field walk)."""

    def __init__(self, frame_id: str):
        ts = typestore()
        self._msg = ts.types[IMAGE_TYPE](
            header=ts.types["std_msgs/msg/Header"](
                stamp=ts.types["builtin_interfaces/msg/Time"](0, 0), frame_id=frame_id
            ),
            height=0,
            width=0,
            encoding="rgb8",
            is_bigendian=0,
            step=0,
            data=np.empty(0, np.uint8),
        )

    def serialize(self, rgb: np.ndarray, stamp_s: float) -> bytes:
        _check_rgb_frame(rgb)
        msg = self._msg
        msg.height, msg.width, msg.step = int(rgb.shape[0]), int(rgb.shape[1]), int(rgb.shape[1]) * 3
        msg.data = np.ascontiguousarray(rgb).reshape(-1)
        set_stamp(msg.header.stamp, stamp_s)
        return bytes(typestore().serialize_cdr(msg, IMAGE_TYPE))


def set_stamp(stamp, t_s: float) -> None:
    """Fill a builtin_interfaces/Time from seconds (exact for the 10 ms physics grid)."""
    ns = int(round(t_s * 1e9))
    stamp.sec, stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000


def stamp_to_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9
