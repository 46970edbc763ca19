"""Space-to-depth rewrite of PilotNet's first convolution, shared by the LiteRT and ONNX INT8 variants.

conv0 is 5x5 stride 2 over 3 channels: INT8 kernels (XNNPACK, ONNX Runtime's QLinearConv) run it
poorly, because a 3-channel reduction fills a fraction of a SIMD register. Rearranging each 2x2 block of
pixels into channels (space-to-depth by 2) turns it into an *exact* 3x3 stride-1 convolution over 12
channels: the 5x5 kernel is zero-padded to 6x6 and split into 3x3 blocks of 2x2 taps.
"""

from __future__ import annotations

import numpy as np

from pilotnet_brain.model.preprocessing import INPUT_SHAPE

#: Channel order of the 4C space-to-depth channels. "c,dy,dx" is torch's pixel_unshuffle order (used by
#: the TFLite files, fed by space_to_depth below); "dy,dx,c" is ONNX SpaceToDepth's (DCR) order.
CHANNEL_ORDERS = ("c,dy,dx", "dy,dx,c")


def s2d_shape(input_shape=None) -> tuple[int, int, int]:
    """(H/2, W/2, 4C) for an NCHW (C, H, W) input shape (H and W even)."""
    if input_shape is None:
        input_shape = INPUT_SHAPE
    c, h, w = input_shape
    if h % 2 or w % 2:
        raise ValueError(f"space-to-depth needs an even height and width, not {input_shape}")
    return h // 2, w // 2, 4 * c


def space_to_depth(batch: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """N x C x H x W float32 -> N x H/2 x W/2 x 4C (NHWC), channel index c*4 + dy*2 + dx ("c,dy,dx").

    Each pair of horizontally adjacent float32 pixels is viewed as one int64 (dx = 0, 1 kept in
    order), so the gather moves half as many elements. `out`, if given, is an N x H/2 x W/2 x 4C
    float32 C-contiguous array written in place (and returned).
    """
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    n, c, h, w = batch.shape
    pairs = batch.view(np.int64).reshape(n, c, h // 2, 2, w // 2)  # n, c, y, dy, x
    if out is None:
        out = np.empty((n, h // 2, w // 2, 4 * c), np.float32)
    target = out.view(np.int64).reshape(n, h // 2, w // 2, c, 2)  # n, y, x, c, dy
    np.copyto(target, pairs.transpose(0, 2, 4, 1, 3))
    return out


def s2d_conv0_kernel(kernel_hwio: np.ndarray, order: str = "c,dy,dx") -> np.ndarray:
    """A k x k stride-2 HWIO kernel -> the equivalent ceil(k/2) x ceil(k/2) stride-1 HWIO kernel over
    the 4C space-to-depth channels in `order` (CHANNEL_ORDERS). Valid for unpadded convolutions."""
    if order not in CHANNEL_ORDERS:
        raise ValueError(f"unknown space-to-depth channel order {order!r}; choose one of {CHANNEL_ORDERS}")
    k, k2, cin, cout = kernel_hwio.shape
    if k != k2:
        raise ValueError(f"square kernels only, not {k}x{k2}")
    half = (k + 1) // 2
    padded = np.zeros((2 * half, 2 * half, cin, cout), kernel_hwio.dtype)
    padded[:k, :k] = kernel_hwio
    blocks = padded.reshape(half, 2, half, 2, cin, cout)  # i, dy, j, dx, c, o
    axes = (0, 2, 4, 1, 3, 5) if order == "c,dy,dx" else (0, 2, 1, 3, 4, 5)
    return np.ascontiguousarray(blocks.transpose(axes).reshape(half, half, 4 * cin, cout))
