"""Keras layers as pure JAX functions of (params, inputs).

Each builder takes the layer's spec (class, config), its stored weights in Keras' order and the shapes of its
inputs, checks that the weights fit, and returns the layer's params (a dict of arrays) and its call. Layers
are channels_last (NHWC); inference mode only (dropout and noise are the identity).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ncjax.errors import ModelFileError, UnsupportedLayerError, UnsupportedModelError
from ncjax.models.keras.activations import SUPPORTED_ACTIVATIONS, activation_name, get_activation

Shape = tuple  # a tensor shape with the batch dimension first (None where unknown)
Params = dict[str, jax.Array]
Call = Callable[[Params, list[jax.Array]], jax.Array]

# Keras' backend epsilon, used by Normalization.
KERAS_EPSILON = 1e-7


def is_standalone_keras2(keras_version: str | None) -> bool:
    """Standalone Keras 2.0-2.3 (TF1-era semantics); tf.keras of that time wrote '2.x.y-tf'."""
    return bool(re.fullmatch(r"2\.[0-3]\.\d+", keras_version or ""))


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a Keras config, with where it sits for error messages."""

    name: str
    class_name: str
    config: dict[str, Any]
    where: str  # e.g. "layer 3 'conv2d_1' (Conv2D) of model 'sequential'"
    keras_version: str | None  # as the file records it: '2.2.4', '2.3.0-tf', '2.15.0', '3.15.1'

    @property
    def keras_major(self) -> int:
        match = re.match(r"(\d+)", self.keras_version or "")
        return int(match.group(1)) if match else 2

    @property
    def standalone_keras2(self) -> bool:
        return is_standalone_keras2(self.keras_version)

    def unsupported(self, what: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self.where}: {what}")

    def weight_error(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.where}: {what}")


@dataclass(frozen=True)
class BuiltLayer:
    params: dict[str, np.ndarray]
    call: Call


Builder = Callable[[LayerSpec, list[np.ndarray], list[Shape]], BuiltLayer]


# ---------------------------------------------------------------------------------------------- helpers


def _pair(value: Any, spec: LayerSpec, key: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise spec.unsupported(f"{key}={value!r} is not an int or a pair of ints.")


def _check_data_format(spec: LayerSpec) -> None:
    if spec.config.get("data_format", "channels_last") not in ("channels_last", None):
        raise UnsupportedModelError(
            f"{spec.where}: data_format='channels_first' is not supported; ncjax runs channels_last "
            "(NHWC) models. Re-save the model with channels_last layers."
        )


def _padding(spec: LayerSpec) -> str:
    padding = str(spec.config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise spec.unsupported(f"padding={padding!r} is not supported (only 'valid' and 'same').")
    return padding.upper()


def _activation(spec: LayerSpec, value: Any = None) -> Callable[[jax.Array], jax.Array]:
    value = spec.config.get("activation") if value is None else value
    name = activation_name(value)
    fn = get_activation(name, keras_major=spec.keras_major) if name else None
    if fn is None:
        raise spec.unsupported(
            f"activation {value!r} is not supported. Supported activations: {', '.join(SUPPORTED_ACTIVATIONS)}."
        )
    return fn


def _take(spec: LayerSpec, weights: list[np.ndarray], expected: Sequence[tuple[str, tuple | None]]) -> dict:
    """Pair stored weights with the names Keras gives them, checking count and shapes."""
    if len(weights) != len(expected):
        names = ", ".join(name for name, _ in expected) or "none"
        raise spec.weight_error(
            f"the file stores {len(weights)} weight array(s) for this layer, but its config needs "
            f"{len(expected)} ({names}). The weights do not belong to this architecture."
        )
    params = {}
    for array, (name, shape) in zip(weights, expected):
        array = np.asarray(array)
        if shape is not None and tuple(array.shape) != tuple(shape):
            if int(np.prod(array.shape)) == int(np.prod(shape)) and name in ("mean", "variance", "alpha"):
                array = array.reshape(shape)  # stored with or without broadcast axes
            else:
                raise spec.weight_error(
                    f"weight '{name}' has shape {tuple(array.shape)} in the file but the config and input "
                    f"shape need {tuple(shape)}."
                )
        params[name] = array.astype(np.float32)
    return params


def _known(dim: int | None, spec: LayerSpec, what: str) -> int:
    if dim is None:
        raise UnsupportedModelError(f"{spec.where}: the size of {what} must be known to build this layer.")
    return int(dim)


def _axes(axis: Any, rank: int) -> tuple[int, ...]:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return tuple(sorted(int(a) % rank for a in axes))


# ------------------------------------------------------------------------------------------ convolution


def _conv(x: jax.Array, kernel: jax.Array, strides, padding, dilation, groups: int) -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel, window_strides=strides, padding=padding, rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
    )


def _conv_common(spec: LayerSpec):
    _check_data_format(spec)
    cfg = spec.config
    strides = _pair(cfg.get("strides", 1), spec, "strides")
    dilation = _pair(cfg.get("dilation_rate", 1), spec, "dilation_rate")
    kernel_size = _pair(cfg["kernel_size"], spec, "kernel_size")
    return kernel_size, strides, _padding(spec), dilation, _activation(spec), bool(cfg.get("use_bias", True))


def conv2d(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    (kh, kw), strides, padding, dilation, act, use_bias = _conv_common(spec)
    groups = int(spec.config.get("groups", 1) or 1)
    cin = _known(in_shapes[0][-1], spec, "the input channels")
    filters = int(spec.config["filters"])
    if cin % groups or filters % groups:
        raise spec.weight_error(f"groups={groups} does not divide {cin} input and {filters} output channels.")
    expected = [("kernel", (kh, kw, cin // groups, filters))] + ([("bias", (filters,))] if use_bias else [])
    params = _take(spec, weights, expected)

    def call(p, xs):
        y = _conv(xs[0], p["kernel"], strides, padding, dilation, groups)
        return act(y + p["bias"] if use_bias else y)

    return BuiltLayer(params, call)


def _depthwise(spec: LayerSpec, in_shapes, pointwise_filters: int | None) -> tuple[list, Callable]:
    """Expected weights and call of a depthwise convolution, optionally followed by a pointwise one
    (SeparableConv2D); the bias and activation come after both."""
    (kh, kw), strides, padding, dilation, act, use_bias = _conv_common(spec)
    cin = _known(in_shapes[0][-1], spec, "the input channels")
    multiplier = int(spec.config.get("depth_multiplier", 1))
    expected: list[tuple[str, tuple[int, ...]]] = [("depthwise_kernel", (kh, kw, cin, multiplier))]
    if pointwise_filters is not None:
        expected.append(("pointwise_kernel", (1, 1, cin * multiplier, pointwise_filters)))
    expected += [("bias", (pointwise_filters or cin * multiplier,))] if use_bias else []

    def call(p, xs):
        # Output channel c·multiplier + m, as TensorFlow's depthwise convolution orders them.
        kernel = p["depthwise_kernel"].reshape(kh, kw, 1, cin * multiplier)
        y = _conv(xs[0], kernel, strides, padding, dilation, cin)
        if pointwise_filters is not None:
            y = _conv(y, p["pointwise_kernel"], (1, 1), "VALID", (1, 1), 1)
        return act(y + p["bias"] if use_bias else y)

    return expected, call


def depthwise_conv2d(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    expected, call = _depthwise(spec, in_shapes, None)
    return BuiltLayer(_take(spec, weights, expected), call)


def separable_conv2d(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    expected, call = _depthwise(spec, in_shapes, int(spec.config["filters"]))
    return BuiltLayer(_take(spec, weights, expected), call)


def dense(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    units = int(spec.config["units"])
    use_bias = bool(spec.config.get("use_bias", True))
    act = _activation(spec)
    fan_in = _known(in_shapes[0][-1], spec, "the input features")
    params = _take(spec, weights, [("kernel", (fan_in, units))] + ([("bias", (units,))] if use_bias else []))

    def call(p, xs):
        y = jnp.matmul(xs[0], p["kernel"])  # acts on the last axis, whatever the rank, as Keras' Dense does
        return act(y + p["bias"] if use_bias else y)

    return BuiltLayer(params, call)


# -------------------------------------------------------------------------------------------- pooling


def _pool_args(spec: LayerSpec):
    _check_data_format(spec)
    pool = _pair(spec.config.get("pool_size", 2), spec, "pool_size")
    strides = spec.config.get("strides")
    strides = pool if strides is None else _pair(strides, spec, "strides")
    return pool, strides, _padding(spec)


def _blocks(x: jax.Array, pool: tuple[int, int]) -> jax.Array:
    """(N, H, W, C) → (N, H//ph, ph, W//pw, pw, C), dropping the rows and columns VALID pooling drops."""
    n, h, w, c = x.shape
    ph, pw = pool
    x = x[:, : (h // ph) * ph, : (w // pw) * pw, :]
    return x.reshape(n, h // ph, ph, w // pw, pw, c)


def _blockwise(pool, strides, padding, shape) -> bool:
    # Window == stride needs no overlap: reshape + reduce. Measured on a 2-core CPU 1.6x faster than
    # lax.reduce_window for the GTSRB network's pooling, whose gradient becomes a scatter on XLA:CPU.
    if tuple(pool) != tuple(strides):
        return False
    return padding == "VALID" or (shape[1] is not None and shape[1] % pool[0] == 0
                                  and shape[2] is not None and shape[2] % pool[1] == 0)


def _pooling(block_reduce: Callable, general: Callable):
    """A pooling layer: `block_reduce` over (N, H', ph, W', pw, C) blocks when windows tile the input,
    otherwise `general(x, window, steps, padding, pool)` through lax.reduce_window."""

    def build(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
        pool, strides, padding = _pool_args(spec)
        _take(spec, weights, [])
        window, steps = (1, *pool, 1), (1, *strides, 1)

        def call(p, xs):
            x = xs[0]
            if _blockwise(pool, strides, padding, x.shape):
                return block_reduce(_blocks(x, pool), axis=(2, 4))
            return general(x, window, steps, padding, pool)

        return BuiltLayer({}, call)

    return build


def _max_pool(x, window, steps, padding, pool):
    return lax.reduce_window(x, -jnp.inf, lax.max, window, steps, padding)


def _average_pool(x, window, steps, padding, pool):
    total = lax.reduce_window(x, 0.0, lax.add, window, steps, padding)
    if padding == "VALID":
        return total / (pool[0] * pool[1])
    # SAME: TensorFlow divides by the number of real (unpadded) pixels under each window.
    ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
    return total / lax.reduce_window(ones, 0.0, lax.add, window, steps, padding)


max_pooling2d = _pooling(jnp.max, _max_pool)
average_pooling2d = _pooling(jnp.mean, _average_pool)


def _global_pool(reduce):
    def build(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
        _check_data_format(spec)
        _take(spec, weights, [])
        keepdims = bool(spec.config.get("keepdims", False))
        return BuiltLayer({}, lambda p, xs: reduce(xs[0], axis=(1, 2), keepdims=keepdims))

    return build


# --------------------------------------------------------------------------------------- reshaping


def flatten(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _check_data_format(spec)
    _take(spec, weights, [])
    return BuiltLayer({}, lambda p, xs: xs[0].reshape(xs[0].shape[0], -1))


def reshape(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    target = tuple(int(d) for d in spec.config["target_shape"])
    return BuiltLayer({}, lambda p, xs: xs[0].reshape((xs[0].shape[0],) + target))


def permute(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    dims = (0,) + tuple(int(d) for d in spec.config["dims"])  # Keras counts from 1, skipping the batch axis
    return BuiltLayer({}, lambda p, xs: jnp.transpose(xs[0], dims))


def _cropping_or_padding(spec: LayerSpec, key: str) -> tuple[tuple[int, int], tuple[int, int]]:
    value = spec.config.get(key, 1)
    if isinstance(value, int):
        return ((value, value), (value, value))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        rows, cols = value
        rows = (rows, rows) if isinstance(rows, int) else tuple(rows)
        cols = (cols, cols) if isinstance(cols, int) else tuple(cols)
        if len(rows) == 2 and len(cols) == 2:
            return ((int(rows[0]), int(rows[1])), (int(cols[0]), int(cols[1])))
    raise spec.unsupported(f"{key}={value!r} is not an int, a pair, or a pair of pairs.")


def zero_padding2d(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _check_data_format(spec)
    _take(spec, weights, [])
    rows, cols = _cropping_or_padding(spec, "padding")
    return BuiltLayer({}, lambda p, xs: jnp.pad(xs[0], ((0, 0), rows, cols, (0, 0))))


def cropping2d(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _check_data_format(spec)
    _take(spec, weights, [])
    (top, bottom), (left, right) = _cropping_or_padding(spec, "cropping")

    def call(p, xs):
        x = xs[0]
        return x[:, top: x.shape[1] - bottom, left: x.shape[2] - right, :]

    return BuiltLayer({}, call)


def upsampling2d(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _check_data_format(spec)
    _take(spec, weights, [])
    sh, sw = _pair(spec.config.get("size", 2), spec, "size")
    interpolation = spec.config.get("interpolation", "nearest")
    if interpolation == "nearest":
        return BuiltLayer({}, lambda p, xs: jnp.repeat(jnp.repeat(xs[0], sh, axis=1), sw, axis=2))
    if interpolation == "bilinear":
        if spec.standalone_keras2:
            raise spec.unsupported(
                "bilinear upsampling from standalone Keras 2.0-2.3 (resize without half-pixel centers) is not "
                "supported; tf.keras 2.x and Keras 3 files are."
            )

        def call(p, xs):
            n, h, w, c = xs[0].shape
            # TensorFlow's resize (half-pixel centers) as tf.keras 2.x and Keras 3 call it; no antialiasing
            # is involved when enlarging.
            return jax.image.resize(xs[0], (n, h * sh, w * sw, c), "bilinear", antialias=False)

        return BuiltLayer({}, call)
    raise spec.unsupported(f"interpolation={interpolation!r} is not supported (only 'nearest' and 'bilinear').")


def identity(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    """Dropout, noise and regularization layers: the identity at inference."""
    _take(spec, weights, [])
    return BuiltLayer({}, lambda p, xs: xs[0])


# -------------------------------------------------------------------------------------- activations


def activation_layer(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    act = _activation(spec)
    return BuiltLayer({}, lambda p, xs: act(xs[0]))


def relu(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    cfg = spec.config
    max_value = cfg.get("max_value")
    slope = float(cfg.get("negative_slope", 0.0) or 0.0)
    threshold = float(cfg.get("threshold", 0.0) or 0.0)

    def call(p, xs):
        x = xs[0]
        # Keras: x for threshold <= x < max_value, max_value above, negative_slope·(x − threshold) below.
        y = jnp.where(x >= threshold, x, slope * (x - threshold))
        return y if max_value is None else jnp.minimum(y, float(max_value))

    return BuiltLayer({}, call)


def leaky_relu(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    cfg = spec.config
    slope = float(cfg["negative_slope"] if "negative_slope" in cfg else cfg.get("alpha", 0.3))
    return BuiltLayer({}, lambda p, xs: jnp.where(xs[0] >= 0, xs[0], slope * xs[0]))


def elu_layer(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    alpha = float(spec.config.get("alpha", 1.0))
    return BuiltLayer({}, lambda p, xs: jax.nn.elu(xs[0], alpha))


def prelu(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    shape = list(in_shapes[0][1:])
    for axis in spec.config.get("shared_axes") or []:
        shape[int(axis) - 1] = 1
    params = _take(spec, weights, [("alpha", tuple(_known(d, spec, "the input") for d in shape))])
    return BuiltLayer(params, lambda p, xs: jnp.where(xs[0] >= 0, xs[0], p["alpha"] * xs[0]))


def softmax_layer(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    axis = spec.config.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, list) else int(axis)
    return BuiltLayer({}, lambda p, xs: jax.nn.softmax(xs[0], axis=axis))


# ------------------------------------------------------------------------------------- normalization


def batch_normalization(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    cfg = spec.config
    if cfg.get("renorm"):
        raise spec.unsupported("renorm=True is not supported.")
    rank = len(in_shapes[0])
    axes = _axes(cfg.get("axis", -1), rank)
    if len(axes) != 1:
        raise spec.unsupported(f"normalizing over several axes {cfg['axis']} is not supported.")
    (axis,) = axes
    channels = _known(in_shapes[0][axis], spec, "the normalized axis")
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    expected = ([("gamma", (channels,))] if scale else []) + ([("beta", (channels,))] if center else [])
    expected += [("moving_mean", (channels,)), ("moving_variance", (channels,))]
    params = _take(spec, weights, expected)
    epsilon = float(cfg.get("epsilon", 1e-3))
    bshape = [1] * rank
    bshape[axis] = channels

    def call(p, xs):
        inv = lax.rsqrt(p["moving_variance"] + epsilon)
        if scale:
            inv = inv * p["gamma"]
        shift = -p["moving_mean"] * inv + (p["beta"] if center else 0.0)
        return xs[0] * inv.reshape(bshape) + shift.reshape(bshape)

    return BuiltLayer(params, call)


def layer_normalization(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    cfg = spec.config
    if cfg.get("rms_scaling"):
        raise spec.unsupported("rms_scaling=True is not supported.")
    rank = len(in_shapes[0])
    axes = _axes(cfg.get("axis", -1), rank)
    shape = tuple(_known(in_shapes[0][a], spec, "the normalized axes") for a in axes)
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    params = _take(spec, weights, ([("gamma", shape)] if scale else []) + ([("beta", shape)] if center else []))
    epsilon = float(cfg.get("epsilon", 1e-3))
    bshape = [in_shapes[0][a] if a in axes else 1 for a in range(rank)]

    def call(p, xs):
        x = xs[0]
        mean = x.mean(axis=axes, keepdims=True)
        var = jnp.square(x - mean).mean(axis=axes, keepdims=True)
        y = (x - mean) * lax.rsqrt(var + epsilon)
        if scale:
            y = y * p["gamma"].reshape(bshape)
        return y + p["beta"].reshape(bshape) if center else y

    return BuiltLayer(params, call)


def normalization(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    cfg = spec.config
    rank = len(in_shapes[0])
    axis = cfg.get("axis", -1)
    axes = () if axis is None else _axes(axis, rank)
    bshape = tuple(_known(in_shapes[0][a], spec, "the normalized axes") if a in axes else 1 for a in range(rank))
    if cfg.get("mean") is not None and cfg.get("variance") is not None:
        # Statistics given to the constructor live in the config, not in the weights.
        params = _take(spec, weights, [])
        stats = {k: np.broadcast_to(np.asarray(cfg[k], np.float32), bshape).copy() for k in ("mean", "variance")}
    else:
        params = _take(spec, weights, [("mean", bshape), ("variance", bshape), ("count", ())])
        stats = None
    invert = bool(cfg.get("invert", False))

    def call(p, xs):
        mean, variance = (stats["mean"], stats["variance"]) if stats else (p["mean"], p["variance"])
        std = jnp.maximum(jnp.sqrt(variance), KERAS_EPSILON)
        return xs[0] * std + mean if invert else (xs[0] - mean) / std

    return BuiltLayer(params, call)


def rescaling(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    scale = np.asarray(spec.config.get("scale", 1.0), np.float32)
    offset = np.asarray(spec.config.get("offset", 0.0), np.float32)
    return BuiltLayer({}, lambda p, xs: xs[0] * scale + offset)


# --------------------------------------------------------------------------------------------- merge


def _merge(combine: Callable[[list[jax.Array]], jax.Array], arity: int | None = None):
    def build(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
        _take(spec, weights, [])
        if arity is not None and len(in_shapes) != arity:
            raise spec.unsupported(f"it takes exactly {arity} inputs, the model gives it {len(in_shapes)}.")
        if len(in_shapes) < 1:
            raise spec.unsupported("a merge layer needs at least one input.")
        return BuiltLayer({}, lambda p, xs: combine(xs))

    return build


def _sum(xs):
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _product(xs):
    total = xs[0]
    for x in xs[1:]:
        total = total * x
    return total


def _fold(op):
    def combine(xs):
        total = xs[0]
        for x in xs[1:]:
            total = op(total, x)
        return total

    return combine


def concatenate(spec: LayerSpec, weights, in_shapes) -> BuiltLayer:
    _take(spec, weights, [])
    axis = int(spec.config.get("axis", -1))
    return BuiltLayer({}, lambda p, xs: jnp.concatenate(xs, axis=axis))


LAYER_BUILDERS: dict[str, Builder] = {
    "Conv2D": conv2d,
    "Convolution2D": conv2d,
    "DepthwiseConv2D": depthwise_conv2d,
    "SeparableConv2D": separable_conv2d,
    "SeparableConvolution2D": separable_conv2d,
    "Dense": dense,
    "MaxPooling2D": max_pooling2d,
    "MaxPool2D": max_pooling2d,
    "AveragePooling2D": average_pooling2d,
    "AvgPool2D": average_pooling2d,
    "GlobalAveragePooling2D": _global_pool(jnp.mean),
    "GlobalAvgPool2D": _global_pool(jnp.mean),
    "GlobalMaxPooling2D": _global_pool(jnp.max),
    "GlobalMaxPool2D": _global_pool(jnp.max),
    "Flatten": flatten,
    "Reshape": reshape,
    "Permute": permute,
    "ZeroPadding2D": zero_padding2d,
    "Cropping2D": cropping2d,
    "UpSampling2D": upsampling2d,
    "Dropout": identity,
    "SpatialDropout1D": identity,
    "SpatialDropout2D": identity,
    "SpatialDropout3D": identity,
    "GaussianNoise": identity,
    "GaussianDropout": identity,
    "AlphaDropout": identity,
    "ActivityRegularization": identity,
    "Activation": activation_layer,
    "ReLU": relu,
    "LeakyReLU": leaky_relu,
    "PReLU": prelu,
    "ELU": elu_layer,
    "Softmax": softmax_layer,
    "BatchNormalization": batch_normalization,
    "LayerNormalization": layer_normalization,
    "Normalization": normalization,
    "Rescaling": rescaling,
    "Add": _merge(_sum),
    "Subtract": _merge(lambda xs: xs[0] - xs[1], arity=2),
    "Multiply": _merge(_product),
    "Average": _merge(lambda xs: _sum(xs) / len(xs)),
    "Maximum": _merge(_fold(jnp.maximum)),
    "Minimum": _merge(_fold(jnp.minimum)),
    "Concatenate": concatenate,
}

# Layers that pass their input through unchanged at inference (skipped when looking for a final softmax).
IDENTITY_LAYERS = frozenset(name for name, builder in LAYER_BUILDERS.items() if builder is identity)
