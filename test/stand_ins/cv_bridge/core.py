"""CvBridge, after ROS 2 cv_bridge/python/cv_bridge/core.py (rolling): same signatures, results and errors."""

import sys

import cv2
import numpy as np
import sensor_msgs.msg


class CvBridgeError(TypeError):
    """Raised by CvBridge methods when a conversion is not possible."""


class CvBridge:
    def __init__(self):
        self.cvtype_to_name = {}
        self.cvdepth_to_numpy_depth = {
            cv2.CV_8U: "uint8",
            cv2.CV_8S: "int8",
            cv2.CV_16U: "uint16",
            cv2.CV_16S: "int16",
            cv2.CV_32S: "int32",
            cv2.CV_32F: "float32",
            cv2.CV_64F: "float64",
        }
        for depth in ("8U", "8S", "16U", "16S", "32S", "32F", "64F"):
            for channels in (1, 2, 3, 4):
                name = f"{depth}C{channels}"
                self.cvtype_to_name[getattr(cv2, f"CV_{name}")] = name
        self.numpy_type_to_cvtype = {
            "uint8": "8U",
            "int8": "8S",
            "uint16": "16U",
            "int16": "16S",
            "int32": "32S",
            "float32": "32F",
            "float64": "64F",
        }
        self.numpy_type_to_cvtype.update({v: k for k, v in self.numpy_type_to_cvtype.items()})

    def dtype_with_channels_to_cvtype2(self, dtype, n_channels):
        return f"{self.numpy_type_to_cvtype[dtype.name]}C{n_channels}"

    def cvtype2_to_dtype_with_channels(self, cvtype):
        from cv_bridge.boost.cv_bridge_boost import CV_MAT_CNWrap, CV_MAT_DEPTHWrap

        return self.cvdepth_to_numpy_depth[CV_MAT_DEPTHWrap(cvtype)], CV_MAT_CNWrap(cvtype)

    def encoding_to_cvtype2(self, encoding):
        from cv_bridge.boost.cv_bridge_boost import getCvType

        try:
            return getCvType(encoding)
        except RuntimeError as e:
            raise CvBridgeError(e) from e

    def encoding_to_dtype_with_channels(self, encoding):
        return self.cvtype2_to_dtype_with_channels(self.encoding_to_cvtype2(encoding))

    def imgmsg_to_cv2(self, img_msg, desired_encoding="passthrough"):
        """sensor_msgs/Image -> array (HxW for one channel, else HxWxC), converted to desired_encoding."""
        dtype, n_channels = self.encoding_to_dtype_with_channels(img_msg.encoding)
        dtype = np.dtype(dtype)
        dtype = dtype.newbyteorder(">" if img_msg.is_bigendian else "<")
        img_buf = np.asarray(img_msg.data, dtype=dtype) if isinstance(img_msg.data, list) else img_msg.data
        if n_channels == 1:
            im = np.ndarray(shape=(img_msg.height, int(img_msg.step / dtype.itemsize)), dtype=dtype, buffer=img_buf)
            im = np.ascontiguousarray(im[: img_msg.height, : img_msg.width])
        else:
            im = np.ndarray(
                shape=(img_msg.height, int(img_msg.step / dtype.itemsize / n_channels), n_channels),
                dtype=dtype,
                buffer=img_buf,
            )
            im = np.ascontiguousarray(im[: img_msg.height, : img_msg.width, :])
        # The message's byte order differs from this machine's.
        if img_msg.is_bigendian == (sys.byteorder == "little"):
            im = im.byteswap().view(im.dtype.newbyteorder())
        if desired_encoding == "passthrough":
            return im

        from cv_bridge.boost.cv_bridge_boost import cvtColor2

        try:
            return cvtColor2(im, img_msg.encoding, desired_encoding)
        except RuntimeError as e:
            raise CvBridgeError(e) from e

    def cv2_to_imgmsg(self, cvim, encoding="passthrough", header=None):
        """array -> a NEW sensor_msgs/Image; `encoding` must match the array's type unless 'passthrough'."""
        if not isinstance(cvim, (np.ndarray, np.generic)):
            raise TypeError("Your input type is not a numpy array")
        img_msg = sensor_msgs.msg.Image()
        img_msg.height = cvim.shape[0]
        img_msg.width = cvim.shape[1]
        if header is not None:
            img_msg.header = header
        if len(cvim.shape) < 3:
            cv_type = self.dtype_with_channels_to_cvtype2(cvim.dtype, 1)
        else:
            cv_type = self.dtype_with_channels_to_cvtype2(cvim.dtype, cvim.shape[2])
        if encoding == "passthrough":
            img_msg.encoding = cv_type
        else:
            img_msg.encoding = encoding
            # The encoding must fit the array's OpenCV type.
            if self.cvtype_to_name[self.encoding_to_cvtype2(encoding)] != cv_type:
                raise CvBridgeError(f"encoding specified as {encoding}, but image has incompatible type {cv_type}")
        if cvim.dtype.byteorder == ">":
            img_msg.is_bigendian = True
        img_msg.data.frombytes(cvim.tobytes())
        img_msg.step = len(img_msg.data) // img_msg.height
        return img_msg
