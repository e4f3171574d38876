"""An ONNX graph as data (nodes, weights, constants) and its evaluation in JAX, node by node.

Nothing from the file is executed: operators come only from ncjax.models.onnx.ops, nodes of other domains (custom
operators) are refused, and the graph is evaluated by looking up each node's operator by name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncjax.core.printable import printable, quoted
from ncjax.errors import ModelFileError, OnnxOpError, UnsupportedLayerError, UnsupportedModelError
from ncjax.models.limits import check_graph_size
from ncjax.models.onnx.ops import OPS, supported_ops
from ncjax.models.onnx.structure import (
    check_attribute_types,
    check_element_type,
    check_order,
    check_tensor_dims,
    check_versions,
)

FINAL_ACTIVATIONS = {"Softmax": "softmax", "LogSoftmax": "log_softmax"}


@dataclass(frozen=True)
class Node:
    name: str
    op_type: str
    inputs: tuple[str, ...]  # "" for a missing optional input
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


@dataclass(frozen=True)
class OnnxGraph:
    nodes: tuple[Node, ...]
    params: dict[str, np.ndarray]  # float initializers: the weights, traced like any JAX pytree
    constants: dict[str, np.ndarray]  # integer and boolean initializers: shapes, axes, indices (static)
    input_name: str
    input_dims: tuple[int | str | None, ...]  # as declared: ints, symbolic names or None
    output_name: str
    output_activation: str  # "softmax" / "log_softmax" when a final one was removed, else "linear"
    opset: int

    def run(self, params: dict, x, *, record: Callable[[Node, list], None] | None = None, until: str | None = None):
        """The graph's output for the input tensor `x`, in the file's own layout (or node `until`'s first)."""
        values: dict[str, Any] = {**self.constants, **params, self.input_name: x}
        for node in self.nodes:
            inputs = [values[name] if name else None for name in node.inputs]
            outputs = _run_op(node, inputs, self.opset)
            for name, value in zip(node.outputs, outputs):
                if name:
                    values[name] = value
            if record is not None:
                record(node, outputs)
            if node.name == until:
                return outputs[0]
        if until is not None:
            raise KeyError(until)
        return values[self.output_name]


def _run_op(node: Node, inputs: list, opset: int) -> list:
    """The node's outputs. A failure names the node and its inputs' shapes, never a value: values come from
    the file (a Reshape target, a Pad amount, a Constant), and numpy's and JAX's own messages quote them."""
    try:
        return OPS[node.op_type](inputs, node.attrs, opset)
    except OnnxOpError as e:  # ncjax's own messages, which show no values
        raise UnsupportedModelError(f"ONNX node {quoted(node.name)} ({node.op_type}): {e}") from None
    except Exception as e:
        shapes = ", ".join("none" if v is None else str(tuple(np.shape(v))) for v in inputs)
        raise UnsupportedModelError(
            f"ONNX node {quoted(node.name)} ({node.op_type}) cannot run on inputs of shapes [{shapes}] with its "
            f"attributes and constants ({type(e).__name__}); the graph is malformed or uses the operator in a way "
            "ncjax does not implement.") from None


def tensor_array(tensor) -> np.ndarray:
    """A TensorProto's values, from the model file only: a tensor that points at external data is refused
    here too, so no path through this module makes onnx read another file."""
    from onnx import TensorProto, numpy_helper

    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
        raise ModelFileError(f"tensor {quoted(tensor.name)} keeps its data in an external file; ncjax reads nothing "
                             "but the model file itself.")
    check_tensor_dims(tensor)
    try:
        return numpy_helper.to_array(tensor)
    except Exception as e:  # an undefined element type, data that does not fill the dims, ...: no values shown
        raise ModelFileError(f"tensor {quoted(tensor.name)} cannot be read ({type(e).__name__}); the file is "
                             "malformed.") from None


def _attributes(proto) -> dict[str, Any]:
    from onnx import helper

    attrs = {}
    for attribute in proto.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif hasattr(value, "data_type") and hasattr(value, "dims"):  # a TensorProto
            value = tensor_array(value)
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        attrs[attribute.name] = value
    return attrs


def parse(model, where: str) -> OnnxGraph:
    """Check a loaded onnx.ModelProto against what ncjax implements and turn it into an OnnxGraph."""
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    check_versions(model, opset, where)
    g = model.graph
    check_graph_size(len(g.node), "nodes", where)
    initializers = {init.name: tensor_array(init) for init in g.initializer}
    params = {k: v for k, v in initializers.items() if np.issubdtype(v.dtype, np.floating)}
    constants = {k: v for k, v in initializers.items() if k not in params}
    inputs = [i for i in g.input if i.name not in initializers]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedModelError(
            f"{where} has {len(inputs)} input(s) and {len(g.output)} output(s); ncjax scans classifiers with one "
            "image input and one output.")
    check_element_type(inputs[0].type.tensor_type.elem_type, f"{where}: the input {quoted(inputs[0].name)}")
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in inputs[0].type.tensor_type.shape.dim)

    nodes = []
    supported = ", ".join(supported_ops())
    for position, proto in enumerate(g.node):
        name = proto.name or f"{proto.op_type}_{position}"
        if proto.domain not in ("", "ai.onnx"):
            raise UnsupportedLayerError(
                f"{where}: node {quoted(name)} is the custom operator "
                f"{printable(proto.domain)}::{printable(proto.op_type)}; "
                "ncjax runs only standard ONNX operators and never custom code.")
        if proto.op_type not in OPS:
            raise UnsupportedLayerError(
                f"{where}: node {quoted(name)} (position {position}) is an ONNX {printable(proto.op_type)}, which "
                f"ncjax does not implement. Supported: {supported}.")
        check_attribute_types(proto, name, opset, where)
        nodes.append(Node(name, proto.op_type, tuple(proto.input), tuple(proto.output), _attributes(proto)))

    check_order(nodes, [inputs[0].name, *initializers], g.output[0].name, where)
    used = {name for node in nodes for name in node.inputs} | {g.output[0].name}
    for node in nodes:
        extra = [o for o in node.outputs[1:] if o and o in used]
        if extra:
            raise UnsupportedModelError(
                f"{where}: node {quoted(node.name)} ({node.op_type}) has its output(s) "
                f"{', '.join(quoted(o) for o in extra[:5])} used; ncjax computes only "
                "an operator's first output (inference).")

    output, activation = g.output[0].name, "linear"
    last = next((n for n in reversed(nodes) if output in n.outputs), None)
    if (last is not None and last.op_type in FINAL_ACTIVATIONS and not any(output in n.inputs for n in nodes)
            and last.attrs.get("axis", -1 if opset >= 13 else 1) in (1, -1)):  # over the classes of (N, K)
        nodes.remove(last)  # apply returns logits; what was removed is recorded
        output, activation = last.inputs[0], FINAL_ACTIVATIONS[last.op_type]
    return OnnxGraph(tuple(nodes), params, constants, inputs[0].name, dims, output, activation, opset)
