"""PilotNet in Keras with the FP32 PyTorch weights, for the TensorFlow variants (export/tf_variants.py).

The port takes the same NCHW batch as every other backend (N x 3 x 66 x 200, from
pilotnet_brain.model.preprocessing) and transposes to NHWC as its first layer; with s2d=True it takes
the space-to-depth NHWC input instead (S2D_LAYOUT), conv0 an exact 3x3 stride-1 rewrite of the 5x5
stride-2 convolution. Weights are ported exactly:

- input BatchNorm: gamma, beta, running mean and variance, same epsilon;
- convolutions: kernels OIHW -> HWIO;
- the first Dense: PyTorch flattens the last feature map (64 x 1 x 18) in C,H,W order, Keras in
  H,W,C order, so the first Linear's input columns are permuted to H,W,C order; the others are W.T.

`port_check` verifies the port against PyTorch on the given frames (~1e-5). TensorFlow/Keras and torch
are imported inside the functions (optional extras).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.model.space_to_depth import s2d_conv0_kernel, s2d_shape, space_to_depth
from pilotnet_brain.runtime.base import check_batch
from pilotnet_brain.runtime.tensorflow import require_tf

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "keras_from_fp32", "keras_pilotnet", "port_check", "port_weights"]

#: Names of the model's input and output tensors (and of the SavedModel signature's).
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def _constant_flatten():
    """A Keras layer class that flattens to [-1, features] with a constant shape (see keras_pilotnet)."""
    import keras  # noqa: PLC0415 (the optional 'tf' extra)

    class ConstantFlatten(keras.layers.Layer):
        def call(self, x):
            return keras.ops.reshape(x, (-1, int(np.prod(x.shape[1:]))))

        def compute_output_shape(self, input_shape):
            return (input_shape[0], int(np.prod(input_shape[1:])))

    return ConstantFlatten


def keras_pilotnet(eps: float = 1e-5, input_norm: bool = True, s2d: bool = False):
    """PilotNet in Keras, NCHW input (transposed inside), same layer sizes as pilotnet.model.PilotNet.

    input_norm=False leaves out the input BatchNorm, for weights where it is folded into conv0.
    s2d=True takes the space_to_depth input (S2D_LAYOUT) instead, conv0 a 3x3 stride-1 convolution;
    it needs input_norm=False (a per-channel BatchNorm would still work, but the fold is what's used).
    """
    require_tf()
    import keras  # noqa: PLC0415 (the optional 'tf' extra)
    from keras import layers  # noqa: PLC0415 (the optional 'tf' extra)

    if s2d and input_norm:
        raise ValueError("the space-to-depth model needs the input BatchNorm folded (input_norm=False)")
    if s2d:
        inputs = keras.Input(shape=s2d_shape(INPUT_SHAPE), name=INPUT_NAME)
        x = inputs
    else:
        inputs = keras.Input(shape=INPUT_SHAPE, name=INPUT_NAME)
        x = layers.Permute((2, 3, 1), name="nchw_to_nhwc")(inputs)
    if input_norm:
        x = layers.BatchNormalization(axis=-1, epsilon=eps, name="input_norm")(x)
    for i, (filters, kernel, stride) in enumerate(((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))):
        if s2d and i == 0:
            kernel, stride = (kernel + 1) // 2, 1
        x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", activation="relu", name=f"conv{i}")(x)
    # Flatten to a constant width (reshape to [-1, 1152]): keras' Flatten builds the shape from the
    # runtime batch size, which leaves SHAPE/STRIDED_SLICE/PACK ops in TFLite that split the XNNPACK graph.
    x = _constant_flatten()(name="flatten")(x)
    for i, units in enumerate((1164, 100, 50, 10)):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    outputs = layers.Dense(2, name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="pilotnet")


def port_weights(torch_model, keras_model) -> None:
    """Copy a PyTorch PilotNet's weights into keras_pilotnet() (see the module docstring)."""
    import torch  # noqa: PLC0415 (the optional 'torch' extra)

    sd = {k: v.detach().cpu().numpy() for k, v in torch_model.state_dict().items()}
    has_norm = isinstance(torch_model.input_norm, torch.nn.BatchNorm2d)
    if has_norm != any(layer.name == "input_norm" for layer in keras_model.layers):
        raise ValueError("the Keras model and the PyTorch model disagree on the input BatchNorm")
    if has_norm:
        bn = keras_model.get_layer("input_norm")
        if abs(bn.epsilon - torch_model.input_norm.eps) > 1e-12:
            raise ValueError(f"BatchNorm epsilon differs: keras {bn.epsilon}, torch {torch_model.input_norm.eps}")
        bn.set_weights(
            [
                sd["input_norm.weight"],
                sd["input_norm.bias"],
                sd["input_norm.running_mean"],
                sd["input_norm.running_var"],
            ]
        )
    convs = [m for m in torch_model.features if isinstance(m, torch.nn.Conv2d)]
    for i, conv in enumerate(convs):
        w = conv.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)
        layer = keras_model.get_layer(f"conv{i}")
        if i == 0 and tuple(layer.kernel.shape) != w.shape:  # the space-to-depth model
            w = s2d_conv0_kernel(w)
        layer.set_weights([w, conv.bias.detach().cpu().numpy()])
    linears = [m for m in torch_model.regressor if isinstance(m, torch.nn.Linear)]
    # The last feature map's shape (C, H, W), from the Keras graph (NHWC there).
    _, h, w, c = keras_model.get_layer("flatten").input.shape
    perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()  # HWC position -> CHW index
    names = [f"dense{i}" for i in range(len(linears) - 1)] + [OUTPUT_NAME]
    for i, (linear, name) in enumerate(zip(linears, names)):
        w = linear.weight.detach().cpu().numpy()
        if i == 0:
            w = w[:, perm]
        keras_model.get_layer(name).set_weights([np.ascontiguousarray(w.T), linear.bias.detach().cpu().numpy()])


def keras_from_fp32(fp32_model: Path, fold_bn: bool = False, s2d: bool = False):
    """(keras model with the FP32 weights, torch model, metadata) for a safetensors PilotNet.

    fold_bn=True folds the input BatchNorm into conv0 first (exact up to rounding: conv0 has no
    padding); the returned torch model is then the folded one. s2d=True (needs fold_bn) builds the
    space-to-depth input model (S2D_LAYOUT; feed it space_to_depth(batch)).
    """
    from pilotnet_brain.model.rewrites import fold_input_norm  # noqa: PLC0415 (imports torch, an optional extra)
    from pilotnet_brain.model.weights import load_model  # noqa: PLC0415 (imports torch, an optional extra)

    torch_model, meta, _ = load_model(fp32_model)
    eps = torch_model.input_norm.eps
    if fold_bn:
        torch_model = fold_input_norm(torch_model)
    keras_model = keras_pilotnet(eps=eps, input_norm=not fold_bn, s2d=s2d)
    port_weights(torch_model, keras_model)
    return keras_model, torch_model, meta


def port_check(keras_model, torch_model, frames: np.ndarray) -> float:
    """Largest |keras - torch| over `frames` (N x 3 x 66 x 200)."""
    import torch  # noqa: PLC0415 (the optional 'torch' extra)

    frames = check_batch(frames)
    with torch.inference_mode():
        ref = torch_model(torch.from_numpy(frames)).numpy()
    if tuple(keras_model.input.shape[1:]) != tuple(frames.shape[1:]):  # the space-to-depth model
        frames = space_to_depth(frames)
    out = np.asarray(keras_model(frames, training=False))
    return float(np.abs(out - ref).max())
