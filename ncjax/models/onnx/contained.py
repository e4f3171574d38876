"""An ONNX file reads nothing but itself: no tensor it carries, wherever it sits, may keep its data elsewhere.

ONNX lets any TensorProto say that its bytes live in another file ("external data", at a path the file
chooses: relative to the working folder, absolute, or through `..`), and the onnx package reads that file when
the tensor is converted. A tensor can sit in an initializer, a sparse initializer, a Constant node's value, any
node's tensor, tensors or sparse-tensor attribute, a subgraph's nodes at any depth, a function's body or a
training graph. Rather than list those places (and miss the next one), `check_contained` walks every message
of the parsed protobuf, iteratively, and refuses the file at the first tensor that points outside it, before
any tensor is converted.
"""
from __future__ import annotations

from typing import Any

from ncjax.core.printable import quoted
from ncjax.errors import ModelFileError


def check_contained(model: Any, where: str) -> None:
    """Refuse `model` (an onnx.ModelProto) if any tensor in it keeps its data in another file."""
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.message import Message
    from onnx import TensorProto

    stack: list[tuple[Any, str]] = [(model, "")]
    while stack:
        message, place = stack.pop()
        if message.DESCRIPTOR is TensorProto.DESCRIPTOR and (
                message.data_location == TensorProto.EXTERNAL or len(message.external_data)):
            location = next((entry.value for entry in message.external_data if entry.key == "location"), None)
            target = "an external file" if location is None else f"the external file {quoted(location)}"
            raise ModelFileError(
                f"{where}: {place or 'a tensor'} keeps its data in {target}; ncjax reads nothing but the model file "
                "itself, so the model is refused unread. Save it with every tensor inside: onnx.save(model, path, "
                "save_as_external_data=False).")
        for field, value in message.ListFields():
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            children = value if _repeated(field, FieldDescriptor) else [value]
            for index, child in enumerate(children):
                if isinstance(child, Message):
                    step = _step(field.name, child, index)
                    stack.append((child, f"{place} > {step}" if place and step else place or step))


def _repeated(field: Any, descriptor: Any) -> bool:
    """Whether a protobuf field is repeated (protobuf 7 dropped `label` for `is_repeated`)."""
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return field.label == descriptor.LABEL_REPEATED


# How the walk names a step into a field: by the child's name, by its position, not at all (a field that adds
# nothing a person needs to find the tensor), or by the field's own name (any other).
_NAMED = {"node": "node", "initializer": "initializer", "attribute": "attribute", "functions": "function"}
_INDEXED = {"tensors": "tensor", "graphs": "graph", "sparse_tensors": "sparse tensor",
            "sparse_initializer": "sparse initializer", "training_info": "training info"}
_SILENT = {"graph", "t", "g", "sparse_tensor", "values", "indices"}


def _step(field: str, child: Any, index: int) -> str:
    """How a person finds `child`, reached through `field`: a node, attribute or initializer by its name."""
    if field in _SILENT:
        return ""
    if field == "node":
        name = getattr(child, "name", "") or f"{getattr(child, 'op_type', '')}_{index}"
        return f"node {quoted(name)}"
    if field in _NAMED:
        return f"{_NAMED[field]} {quoted(getattr(child, 'name', ''))}"
    if field in _INDEXED:
        return f"{_INDEXED[field]} {index}"
    return field.replace("_", " ")
