"""Exact rewrites of a PilotNet, shared by the optimised variants (each returns a modified copy).

Each one computes the same function as its input up to float rounding, so an optimised variant
differs from FP32 by its precision alone:

- `fold_input_norm`: the input BatchNorm folded into the first convolution (no padding there, so
  conv(a*x + b) == conv'(x) with w' = w*a, bias' = bias + sum(w*b));
- `space_to_depth_model`: conv0 (5x5 stride 2 over 3 channels) as the exact 3x3 stride-1 convolution
  over the 12-channel space-to-depth input (see optimize.space_to_depth);
- `paired_conv0_model`: that stride-1 conv0 computing two adjacent output columns per position
  (twice the channels at half the width), laid back out at full width;
- `fc_as_conv_model`: the first two fully connected layers as convolutions over the last feature
  map, so an NHWC INT8 runtime keeps the tensor in its layout up to the small ones.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pilotnet_brain.model.space_to_depth import s2d_conv0_kernel


def fold_input_norm(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval) with input_norm folded into features[0] and replaced by Identity."""
    model = copy.deepcopy(model).eval()
    bn, conv = model.input_norm, model.features[0]
    if not isinstance(bn, nn.BatchNorm2d):
        return model
    if conv.padding not in ((0, 0), 0, "valid"):
        raise ValueError("folding the input BatchNorm needs an unpadded first convolution")
    with torch.no_grad():
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        b = bn.bias - bn.running_mean * a
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
        conv.bias += (conv.weight * b.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        conv.weight *= a.view(1, -1, 1, 1)
    model.input_norm = nn.Identity()
    return model


def space_to_depth_model(model: nn.Module, order: str = "dy,dx,c") -> nn.Module:
    """A copy of a folded `model` taking the space-to-depth(2) of its input (4C x H/2 x W/2, channels
    in `order`: "dy,dx,c" is ONNX SpaceToDepth's), conv0 replaced by its exact stride-1 rewrite."""

    if not isinstance(model.input_norm, nn.Identity):
        raise ValueError("fold the input BatchNorm first (fold_input_norm)")
    model = copy.deepcopy(model).eval()
    conv = model.features[0]
    hwio = conv.weight.detach().numpy().transpose(2, 3, 1, 0)
    kernel = s2d_conv0_kernel(hwio, order=order)
    s2d_conv = nn.Conv2d(kernel.shape[2], conv.out_channels, kernel.shape[0], stride=1)
    with torch.no_grad():
        s2d_conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        s2d_conv.bias.copy_(conv.bias)
    model.features[0] = s2d_conv
    return model


def fc_as_conv_model(model: nn.Module, input_shape: tuple[int, int, int]) -> nn.Module:
    """A copy of `model` whose first two Linear layers (with their ReLUs) run as convolutions at the
    end of `features`: Linear(C*H*W -> n) over the flattened C x H x W map is a C -> n convolution
    with an H x W kernel (same weights, reshaped), and the next Linear a 1x1 convolution.

    `input_shape` is what `features` receives (C, H, W), to find the size of its last map.
    """
    model = copy.deepcopy(model).eval()
    head = list(model.regressor)
    fc1, relu1, fc2, relu2 = head[:4]
    if not (
        isinstance(fc1, nn.Linear)
        and isinstance(fc2, nn.Linear)
        and isinstance(relu1, nn.ReLU)
        and isinstance(relu2, nn.ReLU)
    ):
        raise ValueError("expected the regressor to start Linear, ReLU, Linear, ReLU")
    with torch.no_grad():
        c, h, w = model.features(torch.zeros(1, *input_shape)).shape[1:]
    if c * h * w != fc1.in_features:
        raise ValueError(f"last feature map {c}x{h}x{w} does not match Linear({fc1.in_features}, ...)")
    conv1 = nn.Conv2d(c, fc1.out_features, (h, w))
    conv2 = nn.Conv2d(fc2.in_features, fc2.out_features, 1)
    with torch.no_grad():
        conv1.weight.copy_(fc1.weight.reshape(fc1.out_features, c, h, w))  # flatten order is (c, h, w)
        conv1.bias.copy_(fc1.bias)
        conv2.weight.copy_(fc2.weight[:, :, None, None])
        conv2.bias.copy_(fc2.bias)
    model.features = nn.Sequential(*model.features, conv1, nn.ReLU(), conv2, nn.ReLU())
    model.regressor = nn.Sequential(*head[4:])
    return model


class _PairedConv(nn.Module):
    """conv + ReLU computing two horizontally adjacent output pixels per position (2C channels, half
    the width), then laid back out as C channels at full width. In NHWC memory the two layouts are the
    same bytes, so the Transpose/Reshape/Transpose cancels against an NHWC runtime's own transposes."""

    def __init__(self, conv: nn.Conv2d, channels: int):
        super().__init__()
        self.conv, self.relu, self.channels = conv, nn.ReLU(), channels

    def forward(self, x):
        y = self.relu(self.conv(x)).permute(0, 2, 3, 1)  # N, H, W/2, 2C
        n, h, w2, _ = y.shape
        return y.reshape(n, h, w2 * 2, self.channels).permute(0, 3, 1, 2)  # N, C, H, W


def paired_conv0_model(model: nn.Module) -> nn.Module:
    """A copy of `model` whose stride-1 first convolution (features[0], followed by ReLU) computes two
    adjacent output columns per position: kernel width + 1, stride 2 in width, twice the output
    channels (zero taps where a column's kernel does not reach). Exact; more multiply-adds, but an
    INT8 kernel that works on 64 output channels at a time fills 48 of them instead of 24."""
    model = copy.deepcopy(model).eval()
    conv = model.features[0]
    if not (isinstance(conv, nn.Conv2d) and conv.stride == (1, 1) and isinstance(model.features[1], nn.ReLU)):
        raise ValueError("expected a stride-1 first convolution followed by ReLU (space_to_depth_model first)")
    c_out, c_in, kh, kw = conv.weight.shape
    wide = nn.Conv2d(c_in, 2 * c_out, (kh, kw + 1), stride=(1, 2), padding=conv.padding)
    with torch.no_grad():
        wide.weight.zero_()
        for p in range(2):  # output column 2w + p reads input columns 2w + p ... 2w + p + kw - 1
            wide.weight[p * c_out : (p + 1) * c_out, :, :, p : p + kw] = conv.weight
            wide.bias[p * c_out : (p + 1) * c_out] = conv.bias
    model.features[0] = _PairedConv(wide, c_out)
    model.features[1] = nn.Identity()
    return model
