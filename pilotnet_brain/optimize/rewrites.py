"""Exact rewrites of a PilotNet, shared by the optimised variants (each returns a modified copy).

Each one computes the same function as its input up to float rounding, so an optimised variant
differs from FP32 by its precision alone:

- `fold_input_norm`: the input BatchNorm folded into the first convolution (no padding there, so
  conv(a*x + b) == conv'(x) with w' = w*a, bias' = bias + sum(w*b));
- `space_to_depth_model`: conv0 (5x5 stride 2 over 3 channels) as the exact 3x3 stride-1 convolution
  over the 12-channel space-to-depth input (see optimize.space_to_depth);
- `fc_as_conv_model`: the first two fully connected layers as convolutions over the last feature
  map, so an NHWC INT8 runtime keeps the tensor in its layout up to the small ones.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


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
    from .space_to_depth import s2d_conv0_kernel

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
    if not (isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear)
            and isinstance(relu1, nn.ReLU) and isinstance(relu2, nn.ReLU)):
        raise ValueError("expected the regressor to start Linear, ReLU, Linear, ReLU")
    with torch.no_grad():
        c, h, w = model.features(torch.zeros(1, *input_shape)).shape[1:]
    if c * h * w != fc1.in_features:
        raise ValueError(f"last feature map {c}x{h}x{w} does not match Linear({fc1.in_features}, ...)")
    conv1 = nn.Conv2d(c, fc1.out_features, (h, w))
    conv2 = nn.Conv2d(fc2.in_features, fc2.out_features, 1)
    with torch.no_grad():
        conv1.weight.copy_(fc1.weight.reshape(fc1.out_features, c, h, w))   # flatten order is (c, h, w)
        conv1.bias.copy_(fc1.bias)
        conv2.weight.copy_(fc2.weight[:, :, None, None])
        conv2.bias.copy_(fc2.bias)
    model.features = nn.Sequential(*model.features, conv1, nn.ReLU(), conv2, nn.ReLU())
    model.regressor = nn.Sequential(*head[4:])
    return model
