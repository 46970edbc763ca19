"""The one preprocessing path from a camera frame to PilotNet's input.

Training, offline evaluation and every brain/backend call `preprocess` (or its two halves, which
training uses so it can cache the small uint8 images and augment them before scaling):

    frame (480x640x3 RGB uint8) --crop_and_resize--> 66x200x3 uint8 --to_network_input--> 3x66x200 float32 in [0, 1]

Crop: the lower half of the frame (rows 240..479: the road; the upper half is sky), and resize with
bilinear interpolation, both as DeepLearningStudio does (`cv2.resize` default). Area averaging would
alias less but costs ~0.45 ms per frame against ~0.03 ms, most of the brain node's budget.
"""

from __future__ import annotations

import cv2
import numpy as np

from pilotnet_brain.errors import ImageError

FRAME_HEIGHT, FRAME_WIDTH = 480, 640
INPUT_HEIGHT, INPUT_WIDTH = 66, 200
INPUT_SHAPE = (3, INPUT_HEIGHT, INPUT_WIDTH)
#: Bump when the preprocessing changes: cached training frames made by another version are rebuilt.
PREPROCESSING_VERSION = "crop-lower-half/bilinear-200x66/v2"


def check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {frame.dtype}")
    if frame.shape != (FRAME_HEIGHT, FRAME_WIDTH, 3):
        raise ImageError(f"expected a {FRAME_HEIGHT}x{FRAME_WIDTH}x3 RGB frame, got shape {frame.shape}")
    return frame


def _input_to_frame() -> np.ndarray:
    """Homography: network-input pixel (u, v) -> frame pixel, at the points cv2.resize samples."""
    sx, sy = FRAME_WIDTH / INPUT_WIDTH, (FRAME_HEIGHT // 2) / INPUT_HEIGHT
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5 + FRAME_HEIGHT // 2], [0.0, 0.0, 1.0]])


_INPUT_TO_FRAME = _input_to_frame()


def crop_and_resize(frame_rgb: np.ndarray, view: np.ndarray | None = None) -> np.ndarray:
    """Lower half of the frame, resized to 66x200 (uint8 RGB, HWC).

    view: a 3x3 homography from a pixel of the camera the network was trained with to the pixel of the
    camera that took the frame (a turned camera: brains.camera_yaw.view_correction); the input is then
    sampled through it in one warp (the border it brings in repeats the edge pixels)."""
    check_frame(frame_rgb)
    if view is None:
        road = frame_rgb[FRAME_HEIGHT // 2 :]
        return cv2.resize(road, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return cv2.warpPerspective(
        frame_rgb,
        np.asarray(view, np.float64) @ _INPUT_TO_FRAME,
        (INPUT_WIDTH, INPUT_HEIGHT),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def to_network_input(small_rgb: np.ndarray) -> np.ndarray:
    """66x200x3 uint8 (or a batch N x 66x200x3) -> float32 CHW (NCHW) scaled to [0, 1]."""
    x = np.asarray(small_rgb, dtype=np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def preprocess(frame_rgb: np.ndarray, view: np.ndarray | None = None) -> np.ndarray:
    """480x640x3 RGB uint8 frame -> 3x66x200 float32 network input in [0, 1] (view: see crop_and_resize)."""
    return to_network_input(crop_and_resize(frame_rgb, view))


def preprocess_batch(frames_rgb) -> np.ndarray:
    """Several frames -> N x 3 x 66 x 200 float32."""
    return to_network_input(np.stack([crop_and_resize(f) for f in frames_rgb]))
