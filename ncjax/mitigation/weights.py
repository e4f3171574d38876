"""What a classifier's weights do: which ones fine-tuning may change, and which ones make a hidden layer's units.

Keras params are keyed by layer name and weight name (kernel, bias, gamma, moving_mean, ...); ONNX params by
initializer name, their roles read off the nodes that use them. Both are answered here so that unlearning,
pruning and filters need not know the file format.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.classifier import Classifier, Params
from ncjax.errors import MitigationError

# Keras weights that are statistics, not trained (BatchNormalization's, Normalization's).
KERAS_STATISTICS = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})
# Weights whose last axis (Keras, channels_last) holds one slice per unit.
KERAS_UNIT_WEIGHTS = {"Dense": ("kernel", "bias"), "Conv1D": ("kernel", "bias"), "Conv2D": ("kernel", "bias"),
                      "Conv3D": ("kernel", "bias"), "BatchNormalization": ("gamma", "beta")}
# ONNX operators that map each unit on its own (walked through to find the weights that make the unit).
ONNX_ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "Elu", "Selu", "Tanh", "Clip", "PRelu", "HardSwish", "Identity",
                              "Dropout"})
ONNX_UNIT_MAKERS = frozenset({"Gemm", "Conv", "MatMul", "BatchNormalization"})


@dataclass(frozen=True)
class WeightSlice:
    """params[path] holds one slice per unit along `axis`."""

    path: tuple[str, ...]
    axis: int


@dataclass(frozen=True)
class HiddenLayer:
    """A layer whose units can be read (Classifier.layer_output) and pruned (its weights set to zero)."""

    name: str  # a Keras LayerSummary path or an ONNX node name
    units: int
    unit_axis: int  # the axis of layer_output's array that indexes units
    weights: tuple[WeightSlice, ...]


def trainable_mask(model: Classifier) -> Any:
    """A pytree like model.params: True where fine-tuning may change the weight. Statistics stay frozen; in ONNX
    graphs so do constants that are not a layer's weights (an input scaling such as x / 255)."""
    if model.format == "onnx":
        weights = _onnx_weights(model)
        return {name: name in weights for name in model.params}
    return jax.tree_util.tree_map_with_path(lambda path, _: _key(path[-1]) not in KERAS_STATISTICS, model.params)


# ONNX operators and the input positions that hold their trained weights.
ONNX_WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1),
                      "BatchNormalization": (1, 2), "InstanceNormalization": (1, 2), "LayerNormalization": (1, 2),
                      "PRelu": (1,)}


def _onnx_weights(model: Classifier) -> set[str]:
    """Initializers some node uses as a trained weight, or as the bias added right after a MatMul or Conv."""
    nodes = _onnx_nodes(model)
    producer = {out: n for n in nodes for out in n.outputs}
    found = set()
    for node in nodes:
        positions = ONNX_WEIGHT_INPUTS.get(node.op_type, ())
        found |= {name for k, name in enumerate(node.inputs) if k in positions and name in model.params}
        if node.op_type == "Add" and any(producer.get(i) is not None and producer[i].op_type in ("MatMul", "Conv")
                                         for i in node.inputs):
            found |= {name for name in node.inputs if name in model.params}
    return found


def _key(entry) -> str:
    return str(getattr(entry, "key", entry))


def _onnx_nodes(model: Classifier):
    if model.graph is None or not hasattr(model.graph, "nodes"):
        raise MitigationError("this ONNX classifier carries no graph; load it with ncjax.load_model.")
    return model.graph.nodes


def hidden_layer(model: Classifier, name: str | None = None) -> HiddenLayer:
    """The layer `name` (default: the last hidden layer with weights, before the output layer)."""
    if model.layer_output is None:
        raise MitigationError("this classifier cannot show its hidden layers (it was not loaded from a Keras or "
                              "ONNX file); pruning and input filters need one that was.")
    if model.format == "onnx":
        return _onnx_layer(model, name)
    return _keras_layer(model, name)


def _keras_candidates(model: Classifier) -> list[str]:
    return [row.path for row in model.layers if row.class_name in KERAS_UNIT_WEIGHTS and row.param_count]


def _keras_layer(model: Classifier, name: str | None) -> HiddenLayer:
    candidates = _keras_candidates(model)
    if name is None:
        if len(candidates) < 2:
            raise MitigationError("the model has no hidden Dense, Conv or BatchNormalization layer before its "
                                  "output layer to prune or to read; it cannot be pruned or filtered.")
        name = candidates[-2]
    row = next((r for r in model.layers if r.path == name), None)
    if row is None or name not in candidates:
        raise MitigationError(f"layer {name!r} is not a Dense, Conv or BatchNormalization layer of this model; "
                              f"choose one of: {', '.join(candidates)}.")
    params = _at(model.params, name.split("/"))
    present = [w for w in KERAS_UNIT_WEIGHTS[row.class_name] if w in params]
    if KERAS_UNIT_WEIGHTS[row.class_name][0] not in present:
        raise MitigationError(f"layer {name!r} has no {KERAS_UNIT_WEIGHTS[row.class_name][0]}: zeroing its "
                              "weights would not silence its units; choose another layer.")
    weights = tuple(WeightSlice((*name.split("/"), w), -1) for w in present)
    return HiddenLayer(name, int(row.output_shape[-1]), -1, weights)


def _at(params: Params, path) -> Any:
    for key in path:
        params = params[key]
    return params


def _onnx_layer(model: Classifier, name: str | None) -> HiddenLayer:
    nodes = _onnx_nodes(model)
    makers = [n for n in nodes if n.op_type in ONNX_UNIT_MAKERS and any(i in model.params for i in n.inputs[1:])]
    if name is None:
        if len(makers) < 2:
            raise MitigationError("the ONNX graph has no hidden Gemm, Conv, MatMul or BatchNormalization node "
                                  "before its output to prune or to read.")
        node = makers[-2]
        consumers = [n for n in nodes if node.outputs[0] in n.inputs]
        if len(consumers) == 1 and consumers[0].op_type in ONNX_ELEMENTWISE:
            node = consumers[0]  # read the units after their activation, as the paper does
        name = node.name
    by_name = {n.name: n for n in nodes}
    if name not in by_name:
        raise MitigationError(f"the ONNX graph has no node {name!r}; its weighted nodes are: "
                              f"{', '.join(n.name for n in makers)}.")
    weights = _onnx_unit_weights(model, by_name[name], nodes)
    x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    shape = jax.eval_shape(lambda p, v: model.layer_output(p, v, name), model.params, x).shape
    return HiddenLayer(name, int(shape[1]), 1, weights)


def _onnx_unit_weights(model: Classifier, node, nodes) -> tuple[WeightSlice, ...]:
    """Walk back from `node` through per-unit operators to the node whose weights make its units."""
    producer = {out: n for n in nodes for out in n.outputs}
    found: list[WeightSlice] = []
    start = node.name
    while True:
        inputs = node.inputs
        if node.op_type == "Gemm":
            found.append(WeightSlice((inputs[1],), 0 if node.attrs.get("transB", 0) else 1))
            return tuple(found + ([WeightSlice((inputs[2],), -1)] if len(inputs) > 2 and inputs[2] else []))
        if node.op_type in ("Conv", "BatchNormalization"):
            # Conv: (X, W, B); BatchNormalization: (X, scale, B, mean, var).
            return tuple(found + [WeightSlice((n,), 0) for n in inputs[1:3] if n])
        if node.op_type == "MatMul" and inputs[1] in model.params:
            return tuple(found + [WeightSlice((inputs[1],), -1)])
        bias = [i for i in inputs if i in model.params]
        if node.op_type == "Add" and len(bias) == 1 and np.ndim(model.params[bias[0]]) == 1:
            found.append(WeightSlice((bias[0],), 0))
            following = next(i for i in inputs if i != bias[0])
        elif node.op_type in ONNX_ELEMENTWISE:
            following = inputs[0]
        else:
            raise MitigationError(f"ONNX node {start!r}: cannot tell which weights make its units (reached a "
                                  f"{node.op_type}); choose a Gemm, Conv, MatMul or BatchNormalization node or the "
                                  "activation right after one.")
        if following not in producer:
            raise MitigationError(f"ONNX node {start!r} is not made by a weighted node; choose another.")
        node = producer[following]


def prune_units(params: Params, layer: HiddenLayer, units) -> Params:
    """params with the weights that make `units` of `layer` set to zero."""
    units = np.asarray(units, np.int64)
    if units.size == 0:
        return params
    out = jax.tree_util.tree_map(lambda a: a, params)  # a copy of the containers, arrays shared
    for weight in layer.weights:
        holder = _at(out, weight.path[:-1]) if len(weight.path) > 1 else out
        array = jnp.asarray(holder[weight.path[-1]])
        index = [slice(None)] * array.ndim
        index[weight.axis] = units
        holder[weight.path[-1]] = array.at[tuple(index)].set(0.0)
    return out


class UnitReader:
    """Reads each unit's activation per image, averaged over its positions in a feature map: (N, units)."""

    def __init__(self, model: Classifier, layer: HiddenLayer, *, batch_size: int = 256):
        self.layer, self.batch_size = layer, batch_size

        def per_unit(params, x):
            value = jnp.moveaxis(model.layer_output(params, x, layer.name), layer.unit_axis, 1)
            return value.reshape(value.shape[0], value.shape[1], -1).mean(axis=2)

        self._per_unit = jax.jit(per_unit)

    def __call__(self, params: Params, images: np.ndarray) -> np.ndarray:
        parts = [np.asarray(self._per_unit(params, jnp.asarray(images[i:i + self.batch_size], jnp.float32)))
                 for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.layer.units), np.float32)
