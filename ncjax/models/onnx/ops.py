"""ONNX operators in JAX, with the ONNX specification's semantics (NCHW for images).

A value is either a numpy array, known when the graph is traced (initializers of integer type, constants,
shapes and whatever is computed from them only), or a JAX array that depends on the input images or the
float weights. Shape arithmetic therefore stays static under jit, as Reshape needs. Each operator is
`op(inputs, attributes, opset) -> outputs`; a missing optional input is None.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import OnnxOpError
from ncjax.models.onnx.structure import NUMERIC_TYPES

Value = Any  # np.ndarray (static) or jax.Array (traced)
# Cast's `to`: the element types a graph may hold, bfloat16 aside (strings, complex numbers and 8-bit floats refused).
CAST_TARGETS = NUMERIC_TYPES - {16}
Op = Callable[[list, dict, int], list]
OPS: dict[str, Op] = {}



def op(*names: str):
    def register(fn: Op) -> Op:
        for name in names:
            OPS[name] = fn
        return fn
    return register


def static(v: Value) -> bool:
    return isinstance(v, (np.ndarray, np.generic))


def xp(*values: Value):
    """numpy where every value is static (shape arithmetic), jax.numpy otherwise."""
    return np if all(static(v) for v in values if v is not None) else jnp


def need_static(v: Value, what: str) -> np.ndarray:
    if not static(v):
        raise OnnxOpError(f"{what} must be known before the images are (a constant or computed from shapes), "
                      "but it depends on the input.")
    return np.asarray(v)


# Values a graph computes before the images exist (shapes, axes, indices, constant masks) are few; numpy builds
# them at once, so an output beyond this is refused from its shape before it is allocated.
MAX_STATIC_VALUES = 1 << 24


def check_static_size(shape: Sequence[int], what: str) -> None:
    values = float(np.prod([float(d) for d in shape], dtype=np.float64)) if len(shape) else 1.0
    if values > MAX_STATIC_VALUES or any(d < 0 for d in shape):
        raise OnnxOpError(f"its {what} would hold {values:.3g} values computed from constants alone (at most "
                          f"{MAX_STATIC_VALUES} are allowed); refused before anything is allocated.")


def ints(v: Value, what: str) -> list[int]:
    return [int(i) for i in need_static(v, what).reshape(-1)]


def axis_of(axis: Any, rank: int, what: str = "axis") -> int:
    """An axis attribute or input in [-rank, rank), as a non-negative axis; numpy and JAX would wrap or clamp
    others silently."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or not -rank <= axis < rank:
        raise OnnxOpError(f"its {what} lies outside its input's {rank} axes.")
    return int(axis) % rank


def distinct_axes(axes: Sequence[Any], rank: int, what: str = "axes") -> list[int]:
    """Axes in [-rank, rank), none named twice, as non-negative axes."""
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) and -rank <= a < rank
               for a in axes) or len({int(a) % rank for a in axes}) != len(axes):
        raise OnnxOpError(f"its {what} must be distinct axes of its input's {rank}.")
    return [int(a) % rank for a in axes]


# ------------------------------------------------------------------------------------------ elementwise


def _binary(fn_np, fn_jnp):
    def run(inputs, attrs, opset):
        a, b = inputs
        if static(a) and static(b):
            check_static_size(np.broadcast_shapes(np.shape(a), np.shape(b)), "output")
            return [np.asarray(fn_np(a, b)).astype(np.result_type(a, b))]
        return [fn_jnp(jnp.asarray(a), jnp.asarray(b))]
    return run


def _int_div(a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):
        return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))  # ONNX truncates toward zero
    return a / b


OPS["Add"] = _binary(np.add, jnp.add)
OPS["Sub"] = _binary(np.subtract, jnp.subtract)
OPS["Mul"] = _binary(np.multiply, jnp.multiply)
OPS["Div"] = _binary(_int_div, jnp.divide)


def _unary(fn):
    return lambda inputs, attrs, opset: [fn(jnp.asarray(inputs[0]))]


OPS["Relu"] = _unary(jax.nn.relu)
OPS["Sigmoid"] = _unary(jax.nn.sigmoid)
OPS["Tanh"] = _unary(jnp.tanh)


@op("LeakyRelu")
def leaky_relu(inputs, attrs, opset):
    return [jax.nn.leaky_relu(jnp.asarray(inputs[0]), attrs.get("alpha", 0.01))]


@op("Clip")
def clip(inputs, attrs, opset):
    x = inputs[0]
    if opset < 11:
        low, high = attrs.get("min"), attrs.get("max")
    else:
        low = inputs[1] if len(inputs) > 1 else None
        high = inputs[2] if len(inputs) > 2 else None
    m = xp(x, low, high)
    if low is not None:
        x = m.maximum(x, low)
    if high is not None:
        x = m.minimum(x, high)
    return [x]


@op("Identity", "Dropout")
def identity(inputs, attrs, opset):
    return [inputs[0]]  # Dropout: inference; a use of its mask output is refused by the graph


@op("Cast")
def cast(inputs, attrs, opset):
    from onnx import helper

    if attrs.get("to") not in CAST_TARGETS:
        raise OnnxOpError("it casts to a type other than a real number or bool, which no classifier's images need.")
    dtype = helper.tensor_dtype_to_np_dtype(attrs["to"])
    x = inputs[0]
    return [np.asarray(x).astype(dtype) if static(x) else jnp.asarray(x).astype(dtype)]


# ------------------------------------------------------------------------------------------ constants, shapes


@op("Constant")
def constant(inputs, attrs, opset):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = np.asarray(attrs[key])
            if key in ("value_float", "value_floats"):
                value = value.astype(np.float32)
            elif key in ("value_int", "value_ints"):
                value = value.astype(np.int64)
            return [value]
    names = ", ".join(quoted(name) for name in sorted(attrs)[:5])
    raise OnnxOpError(f"Constant with attributes {names} is not supported (value, value_float(s), value_int(s)).")


@op("ConstantOfShape")
def constant_of_shape(inputs, attrs, opset):
    fill = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    target = ints(inputs[0], "ConstantOfShape's shape")
    check_static_size(target, "output")
    return [np.full(target, fill[0], fill.dtype)]


@op("Shape")
def shape(inputs, attrs, opset):
    dims = np.asarray(np.shape(inputs[0]), np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return [dims[start:end]]


@op("Gather")
def gather(inputs, attrs, opset):
    data, indices = inputs
    axis = axis_of(attrs.get("axis", 0), np.ndim(data))
    size = np.shape(data)[axis]
    if static(indices) and np.size(indices) and not (-size <= np.min(indices) and np.max(indices) < size):
        raise OnnxOpError(f"its indices lie outside the {size} entries of the axis they index.")
    if static(data) and static(indices):
        check_static_size([*np.shape(data)[:axis], *np.shape(indices), *np.shape(data)[axis + 1:]], "output")
        return [np.take(data, indices, axis=axis)]
    idx = need_static(indices, "Gather's indices on an image tensor")
    return [jnp.take(jnp.asarray(data), np.where(idx < 0, idx + size, idx), axis=axis)]


@op("Slice")
def slice_(inputs, attrs, opset):
    x = inputs[0]
    if opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = ints(inputs[1], "Slice's starts"), ints(inputs[2], "Slice's ends")
        axes = ints(inputs[3], "Slice's axes") if len(inputs) > 3 and inputs[3] is not None else None
        steps = ints(inputs[4], "Slice's steps") if len(inputs) > 4 and inputs[4] is not None else None
    rank = np.ndim(x)
    axes = list(range(len(starts))) if axes is None else distinct_axes(axes, rank)
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise OnnxOpError("its starts, ends, axes and steps must have one entry each per sliced axis, steps not 0.")
    index = [slice(None)] * rank
    for axis, start, end, step in zip(axes, starts, ends, steps):
        index[axis] = _onnx_slice(start, end, step, np.shape(x)[axis])
    return [x[tuple(index)]]


def _onnx_slice(start: int, end: int, step: int, size: int) -> slice:
    """The spec's clamping (ends may be +-2**63 to mean "to the end"), as a Python slice."""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), size), min(max(end, 0), size), step)
    start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
    if start < 0:  # clamped below index 0: nothing to take
        return slice(0, 0, step)
    return slice(start, None if end < 0 else end, step)  # end -1 means "past index 0", not the last one


@op("Concat")
def concat(inputs, attrs, opset):
    values = [v for v in inputs if v is not None]
    axis = axis_of(attrs.get("axis"), np.ndim(values[0]))
    if all(static(v) for v in values):
        check_static_size([sum(int(np.size(v)) for v in values)], "output")
    return [xp(*values).concatenate(values, axis=axis)]


@op("Reshape")
def reshape(inputs, attrs, opset):
    x, target = inputs[0], ints(inputs[1], "Reshape's shape")
    if not attrs.get("allowzero", 0):
        if any(d == 0 for d in target[np.ndim(x):]):
            raise OnnxOpError("its target copies (0) an axis its input does not have.")
        target = [np.shape(x)[i] if d == 0 else d for i, d in enumerate(target)]
    known = int(np.prod([d for d in target if d != -1], dtype=np.float64))
    if min(target, default=0) < -1 or target.count(-1) > 1 or (
            known != np.size(x) if -1 not in target else (known == 0 or np.size(x) % known)):
        raise OnnxOpError(f"its target shape (rank {len(target)}) does not hold the {np.size(x)} values of its "
                          "input (at most one -1, no other negative size).")
    return [xp(x).reshape(x, target)]


@op("Flatten")
def flatten(inputs, attrs, opset):
    x = inputs[0]
    rank = np.ndim(x)
    axis = attrs.get("axis", 1)
    axis = rank if axis == rank else axis_of(axis, rank)  # the spec allows [-rank, rank]
    dims = np.shape(x)
    return [xp(x).reshape(x, (int(np.prod(dims[:axis])), int(np.prod(dims[axis:]))))]


@op("Transpose")
def transpose(inputs, attrs, opset):
    x = inputs[0]
    perm = attrs.get("perm", list(range(np.ndim(x)))[::-1])
    if sorted(perm) != list(range(np.ndim(x))):
        raise OnnxOpError(f"its perm is not a permutation of its input's {np.ndim(x)} axes.")
    return [xp(x).transpose(x, perm)]


def _axes(inputs, attrs, opset, first_input_opset=13):
    if opset < first_input_opset:
        return attrs.get("axes")
    return ints(inputs[1], "axes") if len(inputs) > 1 and inputs[1] is not None else None


@op("Squeeze")
def squeeze(inputs, attrs, opset):
    x = inputs[0]
    axes = _axes(inputs, attrs, opset)
    if axes is None:
        axes = [i for i, d in enumerate(np.shape(x)) if d == 1]
    axes = distinct_axes(axes, np.ndim(x))
    if any(np.shape(x)[a] != 1 for a in axes):
        raise OnnxOpError("it squeezes an axis whose size is not 1.")
    return [xp(x).squeeze(x, tuple(axes))]


@op("Unsqueeze")
def unsqueeze(inputs, attrs, opset):
    x = inputs[0]
    axes = _axes(inputs, attrs, opset)
    rank = np.ndim(x) + len(axes)
    for axis in sorted(distinct_axes(axes, rank)):
        x = xp(x).expand_dims(x, axis)
    return [x]


# ------------------------------------------------------------------------------------------ linear algebra


@op("MatMul")
def matmul(inputs, attrs, opset):
    return [jnp.matmul(jnp.asarray(inputs[0]), jnp.asarray(inputs[1]))]


@op("Gemm")
def gemm(inputs, attrs, opset):
    a, b = jnp.asarray(inputs[0]), jnp.asarray(inputs[1])
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    y = attrs.get("alpha", 1.0) * (a @ b)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + attrs.get("beta", 1.0) * jnp.asarray(inputs[2])
    return [y]


# ------------------------------------------------------------------------------------------ convolution, pooling


def _check_window(attrs, n: int, kernel) -> None:
    """A convolution's or pooling's window attributes, by type and range, before any array is built (the
    messages name the attribute, not its values, which come from the file)."""
    wanted = {"kernel_shape": (n, 1), "strides": (n, 1), "dilations": (n, 1), "pads": (2 * n, 0)}
    for name, (length, low) in wanted.items():
        values = attrs.get(name)
        if values is None:
            continue
        if (not isinstance(values, (list, tuple)) or len(values) != length
                or not all(isinstance(v, int) and low <= v <= 1 << 20 for v in values)):
            raise OnnxOpError(f"its {name} must be {length} whole numbers from {low} up (one per spatial axis"
                              f"{', begins then ends' if name == 'pads' else ''}).")
    if kernel is not None and attrs.get("kernel_shape") is not None and list(attrs["kernel_shape"]) != list(kernel):
        raise OnnxOpError("its kernel_shape does not match its weights' spatial shape.")


def _spatial_pads(attrs, in_sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis from pads or auto_pad."""
    auto_pad = attrs.get("auto_pad", "NOTSET")
    n = len(in_sizes)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            pads.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
        return pads
    if auto_pad == "VALID":
        return [(0, 0)] * n
    if auto_pad != "NOTSET":
        raise OnnxOpError(f"auto_pad {quoted(auto_pad)} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID.")
    flat = attrs.get("pads", [0] * (2 * n))
    return [(flat[i], flat[i + n]) for i in range(n)]


@op("Conv")
def conv(inputs, attrs, opset):
    x, w = jnp.asarray(inputs[0]), jnp.asarray(inputs[1])
    if x.ndim != 4:
        raise OnnxOpError(f"only 2-D convolutions (4-D inputs) are supported, got a {x.ndim}-D input.")
    if w.ndim != 4:
        raise OnnxOpError(f"its weights must be 4-D (out, in / group, kH, kW), got {w.ndim}-D.")
    _check_window(attrs, 2, list(w.shape[2:]))
    group = attrs.get("group", 1)
    if not isinstance(group, int) or group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise OnnxOpError("its group does not divide its input and output channels as its weights' shape says.")
    kernel = attrs.get("kernel_shape", list(w.shape[2:]))
    strides = attrs.get("strides", [1, 1])
    dilations = attrs.get("dilations", [1, 1])
    pads = _spatial_pads(attrs, x.shape[2:], kernel, strides, dilations)
    y = jax.lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dilations,
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                     feature_group_count=attrs.get("group", 1))
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + jnp.asarray(inputs[2]).reshape(1, -1, 1, 1)
    return [y]


def _pool_geometry(x, attrs):
    if x.ndim != 4:
        raise OnnxOpError(f"only 2-D pooling (4-D inputs) is supported, got a {x.ndim}-D input.")
    if "kernel_shape" not in attrs:
        raise OnnxOpError("it has no kernel_shape, which pooling requires.")
    _check_window(attrs, 2, None)
    kernel = attrs["kernel_shape"]
    strides = attrs.get("strides", [1] * len(kernel))
    dilations = attrs.get("dilations", [1] * len(kernel))
    pads = _spatial_pads(attrs, x.shape[2:], kernel, strides, dilations)
    extra = []
    for size, k, s, d, (begin, end) in zip(x.shape[2:], kernel, strides, dilations, pads):
        span = (k - 1) * d + 1
        if span > size + begin + end:
            raise OnnxOpError("its window is larger than its padded input.")
        if attrs.get("ceil_mode", 0):
            out = math.ceil((size + begin + end - span) / s) + 1
            if (out - 1) * s >= size + begin:  # the last window must start inside the input or its left pad
                out -= 1
        else:
            out = (size + begin + end - span) // s + 1
        extra.append(max((out - 1) * s + span - (size + begin + end), 0))
    return kernel, strides, dilations, pads, extra


@op("MaxPool")
def max_pool(inputs, attrs, opset):
    x = jnp.asarray(inputs[0])
    if attrs.get("storage_order", 0):
        raise OnnxOpError("MaxPool with storage_order=1 is not supported.")
    kernel, strides, dilations, pads, extra = _pool_geometry(x, attrs)
    padding = ((0, 0), (0, 0), *((b, e + x2) for (b, e), x2 in zip(pads, extra)))
    return [jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, *kernel), (1, 1, *strides), padding,
                                  window_dilation=(1, 1, *dilations))]


@op("AveragePool")
def average_pool(inputs, attrs, opset):
    x = jnp.asarray(inputs[0])
    kernel, strides, dilations, pads, extra = _pool_geometry(x, attrs)
    padding = ((0, 0), (0, 0), *((b, e + x2) for (b, e), x2 in zip(pads, extra)))
    window = dict(window_dimensions=(1, 1, *kernel), window_strides=(1, 1, *strides), padding=padding,
                  window_dilation=(1, 1, *dilations))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, **window)
    # The divisor counts the window's cells inside the input, plus its explicit pads with count_include_pad,
    # never the cells a ceil_mode window hangs past them.
    ones = jnp.ones((1, 1, *x.shape[2:]), x.dtype)
    if attrs.get("count_include_pad", 0):
        ones = jnp.pad(ones, ((0, 0), (0, 0), *pads), constant_values=1.0)
        padding = ((0, 0), (0, 0), *((0, x2) for x2 in extra))
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window["window_dimensions"], window["window_strides"],
                                  padding, window_dilation=window["window_dilation"])
    return [total / count]


@op("GlobalAveragePool")
def global_average_pool(inputs, attrs, opset):
    x = jnp.asarray(inputs[0])
    return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)]


@op("GlobalMaxPool")
def global_max_pool(inputs, attrs, opset):
    x = jnp.asarray(inputs[0])
    return [x.max(axis=tuple(range(2, x.ndim)), keepdims=True)]


@op("ReduceMean")
def reduce_mean(inputs, attrs, opset):
    x = inputs[0]
    axes = attrs.get("axes") if opset < 18 else (ints(inputs[1], "ReduceMean's axes")
                                                  if len(inputs) > 1 and inputs[1] is not None else None)
    if axes is None or len(axes) == 0:
        if attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(np.ndim(x)))
    return [xp(x).mean(x, axis=tuple(distinct_axes(axes, np.ndim(x))), keepdims=bool(attrs.get("keepdims", 1)))]


@op("BatchNormalization")
def batch_norm(inputs, attrs, opset):
    if attrs.get("training_mode", 0):
        raise OnnxOpError("BatchNormalization in training mode is not supported; export the model in eval mode.")
    x, scale, bias, mean, var = (jnp.asarray(v) for v in inputs[:5])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = scale / jnp.sqrt(var + attrs.get("epsilon", 1e-5))
    return [(x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)]


@op("Pad")
def pad(inputs, attrs, opset):
    x = inputs[0]
    mode = attrs.get("mode", "constant")
    if opset < 11:
        flat, value, axes = attrs["pads"], attrs.get("value", 0.0), None
    else:
        flat = ints(inputs[1], "Pad's pads")
        value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else 0.0
        axes = ints(inputs[3], "Pad's axes") if len(inputs) > 3 and inputs[3] is not None else None
    rank = np.ndim(x)
    axes = list(range(rank)) if axes is None else distinct_axes(axes, rank)
    if len(flat) != 2 * len(axes):
        raise OnnxOpError(f"its pads must have two entries per padded axis ({2 * len(axes)}).")
    widths = [(0, 0)] * rank
    for i, axis in enumerate(axes):
        widths[axis] = (flat[i], flat[i + len(axes)])
    if any(b < 0 or e < 0 for b, e in widths):
        raise OnnxOpError("Pad with negative pads (cropping) is not supported.")
    m = xp(x)
    if static(x):
        check_static_size([d + b + e for d, (b, e) in zip(np.shape(x), widths)], "output")
    if mode == "constant":
        if static(value):
            return [m.pad(x, widths, mode="constant", constant_values=np.asarray(value).reshape(-1)[0])]
        return [jnp.pad(jnp.asarray(x), widths, mode="constant", constant_values=jnp.reshape(value, (-1,))[0])]
    if mode in ("reflect", "edge", "wrap"):
        return [m.pad(x, widths, mode=mode)]
    raise OnnxOpError(f"Pad mode {quoted(mode)} is not one of constant, reflect, edge, wrap.")


def _softmax_like(fn):
    def run(inputs, attrs, opset):
        x = jnp.asarray(inputs[0])
        if opset < 13:  # coerced to 2-D at `axis` (default 1)
            axis = axis_of(attrs.get("axis", 1), x.ndim)
            flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
            return [fn(flat, axis=1).reshape(x.shape)]
        return [fn(x, axis=axis_of(attrs.get("axis", -1), x.ndim))]
    return run


OPS["Softmax"] = _softmax_like(jax.nn.softmax)
OPS["LogSoftmax"] = _softmax_like(jax.nn.log_softmax)


def supported_ops() -> Sequence[str]:
    return sorted(OPS)
