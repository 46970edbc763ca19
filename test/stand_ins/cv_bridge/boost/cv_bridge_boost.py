"""numpy replacement for cv_bridge's C++ extension: the functions core.py calls, with the same errors.

Upstream raises RuntimeError (a cv_bridge::Exception through boost::python) and core.py turns it into
CvBridgeError.
"""

import re

import cv2
import numpy as np

_DEPTHS = ("8U", "8S", "16U", "16S", "32S", "32F", "64F")
# sensor_msgs/image_encodings.h -> OpenCV type name (cv_bridge's getCvType).
_ENCODING_TYPES = {
    "rgb8": "8UC3",
    "bgr8": "8UC3",
    "rgba8": "8UC4",
    "bgra8": "8UC4",
    "mono8": "8UC1",
    "rgb16": "16UC3",
    "bgr16": "16UC3",
    "rgba16": "16UC4",
    "bgra16": "16UC4",
    "mono16": "16UC1",
    "yuv422": "8UC2",
}
_TYPE_NAMES = {getattr(cv2, f"CV_{d}C{c}"): (d, c) for d in _DEPTHS for c in (1, 2, 3, 4)}
_DEPTH_CODES = {d: getattr(cv2, f"CV_{d}") for d in _DEPTHS}

# Channel order of the colour encodings cvtColor2 converts between (mono8 is one grey channel).
_CHANNELS = {"rgb8": "rgb", "bgr8": "bgr", "rgba8": "rgba", "bgra8": "bgra", "mono8": "l"}


def getCvType(encoding):  # noqa: N802  (upstream name)
    name = _ENCODING_TYPES.get(encoding)
    if name is None:
        match = re.fullmatch(r"(8U|8S|16U|16S|32S|32F|64F)C([1-4])", encoding)
        if match is None:
            raise RuntimeError(f"Unrecognized image encoding [{encoding}]")
        name = encoding
    return getattr(cv2, f"CV_{name}")


def CV_MAT_CNWrap(cvtype):  # noqa: N802  (upstream name)
    return _TYPE_NAMES[cvtype][1]


def CV_MAT_DEPTHWrap(cvtype):  # noqa: N802  (upstream name)
    return _DEPTH_CODES[_TYPE_NAMES[cvtype][0]]


def cvtColor2(img, encoding_in, encoding_out):  # noqa: N802  (upstream name)
    """A converted copy of `img` (HxWxC array in encoding_in)."""
    if encoding_in == encoding_out:
        return np.array(img, copy=True)
    src, dst = _CHANNELS.get(encoding_in), _CHANNELS.get(encoding_out)
    if src is None or dst is None:
        raise RuntimeError(f"Unsupported conversion from [{encoding_in}] to [{encoding_out}]")
    if src == "l":
        grey = img if img.ndim == 2 else img[..., 0]
        planes = {"r": grey, "g": grey, "b": grey, "a": np.full_like(grey, 255)}
    else:
        planes = {ch: img[..., i] for i, ch in enumerate(src)}
        planes.setdefault("a", np.full_like(planes["r"], 255))
    if dst == "l":  # ITU-R BT.601 luma, as cv::cvtColor
        luma = 0.299 * planes["r"] + 0.587 * planes["g"] + 0.114 * planes["b"]
        return np.clip(np.rint(luma), 0, 255).astype(img.dtype)
    return np.ascontiguousarray(np.stack([planes[ch] for ch in dst], axis=-1))
