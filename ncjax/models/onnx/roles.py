"""What an ONNX classifier's weights do: params are keyed by initializer name, so their roles are read off the
nodes that use them (a Conv's weight and bias, a Gemm's matrices, the bias Added after a MatMul)."""
from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import MitigationError
from ncjax.models.classifier import Classifier
from ncjax.models.layer_roles import HiddenLayer, WeightSlice
from ncjax.models.onnx.graph import Node, OnnxGraph

# Operators that map each unit on its own (walked through to find the weights that make the unit).
ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "Elu", "Selu", "Tanh", "Clip", "PRelu", "HardSwish", "Identity",
                         "Dropout"})
UNIT_MAKERS = frozenset({"Gemm", "Conv", "MatMul", "BatchNormalization"})
# Operators and the input positions that hold their trained weights.
WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1),
                 "BatchNormalization": (1, 2), "InstanceNormalization": (1, 2), "LayerNormalization": (1, 2),
                 "PRelu": (1,)}


class OnnxRoles:
    """The WeightRoles of a classifier read from an ONNX file; it is written back by editing that file."""

    kind, suffix = "ONNX", ".onnx"

    def __init__(self, graph: OnnxGraph):
        self.graph = graph

    def trainable_mask(self, model: Classifier) -> Any:
        """Constants that are not a layer's weights (an input scaling such as x / 255) stay frozen."""
        weights = self._weights(model)
        return {name: name in weights for name in model.params}

    def _weights(self, model: Classifier) -> set[str]:
        """Initializers some node uses as a trained weight, or as the bias added right after a MatMul or Conv."""
        nodes = self.graph.nodes
        producer = {out: n for n in nodes for out in n.outputs}
        found = set()
        for node in nodes:
            positions = WEIGHT_INPUTS.get(node.op_type, ())
            found |= {name for k, name in enumerate(node.inputs) if k in positions and name in model.params}
            if node.op_type == "Add" and any(producer.get(i) is not None and producer[i].op_type in ("MatMul", "Conv")
                                             for i in node.inputs):
                found |= {name for name in node.inputs if name in model.params}
        return found

    def hidden_layer(self, model: Classifier, name: str | None) -> HiddenLayer:
        nodes = self.graph.nodes
        makers = [n for n in nodes if n.op_type in UNIT_MAKERS and any(i in model.params for i in n.inputs[1:])]
        if name is None:
            if len(makers) < 2:
                raise MitigationError("the ONNX graph has no hidden Gemm, Conv, MatMul or BatchNormalization node "
                                      "before its output to prune or to read.")
            node = makers[-2]
            consumers = [n for n in nodes if node.outputs[0] in n.inputs]
            if len(consumers) == 1 and consumers[0].op_type in ELEMENTWISE:
                node = consumers[0]  # read the units after their activation, as the paper does
            name = node.name
        by_name = {n.name: n for n in nodes}
        if name not in by_name:
            raise MitigationError(f"the ONNX graph has no node {quoted(name)}; its weighted nodes are: "
                                  f"{', '.join(quoted(n.name) for n in makers)}.")
        weights = self._unit_weights(model, by_name[name])
        x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
        read = model.layer_output
        assert read is not None  # the ONNX loader always sets it
        shape = jax.eval_shape(lambda p, v: read(p, v, name), model.params, x).shape
        return HiddenLayer(name, int(shape[1]), 1, weights)

    def _unit_weights(self, model: Classifier, node: Node) -> tuple[WeightSlice, ...]:
        """Walk back from `node` through per-unit operators to the node whose weights make its units."""
        producer = {out: n for n in self.graph.nodes for out in n.outputs}
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
            elif node.op_type in ELEMENTWISE:
                following = inputs[0]
            else:
                raise MitigationError(f"ONNX node {start!r}: cannot tell which weights make its units (reached a "
                                      f"{node.op_type}); choose a Gemm, Conv, MatMul or BatchNormalization node or "
                                      "the activation right after one.")
            if following not in producer:
                raise MitigationError(f"ONNX node {start!r} is not made by a weighted node; choose another.")
            node = producer[following]

    def save(self, model: Classifier, path: str | os.PathLike) -> None:
        from ncjax.models.onnx.save import save_onnx

        save_onnx(model, path)

    def reload(self, model: Classifier, path: str | os.PathLike) -> Classifier:
        from ncjax.models.onnx.load import load_onnx

        return load_onnx(path, input_shape=model.input_shape, layout=model.input_layout)
