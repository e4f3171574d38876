"""What an ONNX file must be before any of its values is used: a version ncjax knows, tensors of numbers whose
data fills their dims, one definition per value, nodes in an order that computes the output, no subgraphs.

Each check refuses the file in one line naming the place; none shows a tensor's values.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ncjax.core.printable import quoted
from ncjax.errors import ModelFileError, UnsupportedModelError

# The oldest standard opset whose operators ncjax implements with their current inputs (Reshape's target as an
# input since 5, BatchNormalization without `spatial` since 7); exporters in use write 9 or newer.
MIN_OPSET = 7
# TensorProto element types that hold numbers ncjax computes with: the float and integer types and bool.
# Strings, complex numbers, the 4- and 8-bit floats and undefined (0) are refused.
NUMERIC_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16})


def check_versions(model: Any, opset: int, where: str) -> None:
    """An IR version and a standard opset ncjax implements and this onnx package defines."""
    from onnx import defs

    newest = defs.onnx_opset_version()
    if model.ir_version < 1:
        raise ModelFileError(f"{where} declares no IR version; the file is malformed.")
    if not MIN_OPSET <= opset <= newest:
        said = "no standard opset" if opset == 0 else f"standard opset {opset}"
        raise ModelFileError(f"{where} imports {said}; ncjax implements opsets {MIN_OPSET} to {newest}, so its "
                             "operators' meaning is unknown. Export it again with a released opset "
                             "(torch.onnx.export(..., opset_version=17)).")


def check_element_type(elem_type: int, what: str) -> None:
    """`what` (a tensor or the input, named with its file) holds numbers of a type ncjax computes with."""
    if elem_type not in NUMERIC_TYPES:
        raise ModelFileError(f"{what} has ONNX element type {elem_type}, which does not hold real numbers "
                             "(strings, complex numbers and 8-bit floats are not supported).")


def check_tensor_dims(tensor: Any) -> None:
    """A tensor's declared dims, before its data is read: no negative size (a reshape would take it as 'infer')."""
    if any(d < 0 for d in tensor.dims):
        raise ModelFileError(f"tensor {quoted(tensor.name)} declares a negative dimension; the file is malformed.")
    check_element_type(tensor.data_type, f"tensor {quoted(tensor.name)}")


# Integer attributes the operators read as switches: 0 or 1, where any other value would be read as "on".
FLAG_ATTRIBUTES = frozenset({"allowzero", "ceil_mode", "count_include_pad", "keepdims", "noop_with_empty_axes",
                             "training_mode", "transA", "transB"})


def check_attribute(attribute: Any, node_name: str, where: str) -> None:
    """Subgraphs (If, Loop, Scan bodies, or any node carrying a graph) are control flow ncjax does not run."""
    from onnx import AttributeProto

    if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise UnsupportedModelError(f"{where}: node {quoted(node_name)} carries a subgraph (attribute "
                                    f"{quoted(attribute.name)}); ncjax runs no control flow or subgraphs.")


def check_attribute_types(proto: Any, node_name: str, opset: int, where: str) -> None:
    """No attribute is a subgraph (check_attribute), and every attribute of a standard node is one its operator's
    schema (at the file's opset) defines, of the type it defines, and a switch is 0 or 1: an exporter never writes
    others, and an operator would misread them."""
    from onnx import AttributeProto, defs

    for attribute in proto.attribute:
        check_attribute(attribute, node_name, where)
    try:
        schema = defs.get_schema(proto.op_type, opset, "")
    except Exception:  # not defined at this opset: the operator table refuses it by name
        return
    for attribute in proto.attribute:
        spec = schema.attributes.get(attribute.name)
        at = f"{where}: node {quoted(node_name)} ({proto.op_type})"
        if spec is None:
            raise ModelFileError(f"{at} has the attribute {quoted(attribute.name)}, which {proto.op_type} does not "
                                 f"define at opset {opset}; the file is malformed.")
        expected: int = spec.type.value  # type: ignore[attr-defined]  # an enum numbered as AttributeProto's types
        if attribute.type != expected:
            given = AttributeProto.AttributeType.Name(attribute.type) if attribute.type in \
                AttributeProto.AttributeType.values() else str(attribute.type)
            raise ModelFileError(f"{at}: its attribute {quoted(attribute.name)} is of type {given}, where "
                                 f"{proto.op_type} takes {AttributeProto.AttributeType.Name(expected)}.")
        if attribute.name in FLAG_ATTRIBUTES and attribute.i not in (0, 1):
            raise ModelFileError(f"{at}: its attribute {quoted(attribute.name)} must be 0 or 1.")


def check_order(nodes: Sequence[Any], defined: Sequence[str], output: str, where: str) -> None:
    """Each value is defined once and before it is read, and the graph's output is defined: nodes read only
    what the input, an initializer or an earlier node gives, which also rules out cycles."""
    seen = set(defined)
    for node in nodes:
        missing = next((name for name in node.inputs if name and name not in seen), None)
        if missing is not None:
            raise ModelFileError(f"{where}: node {quoted(node.name)} ({node.op_type}) reads {quoted(missing)}, which "
                                 "no earlier node, initializer or input gives (the graph is out of order, cyclic or "
                                 "incomplete).")
        for name in node.outputs:
            if name and name in seen:
                raise ModelFileError(f"{where}: node {quoted(node.name)} ({node.op_type}) defines {quoted(name)}, "
                                     "which the graph already defines; the file is malformed.")
            seen.add(name)
    if output not in seen:
        raise ModelFileError(f"{where}: the graph's output {quoted(output)} is computed by no node; the file is "
                             "malformed.")
