"""An ONNX classifier written back: its source file with every initializer that is a param replaced by the
model's value (the graph, its attributes and everything else kept as the file had them)."""
from __future__ import annotations

import os

import numpy as np

from ncjax.errors import MissingDependencyError, SaveError
from ncjax.models.classifier import Classifier
from ncjax.models.onnx.load import read_proto
from ncjax.models.safe_files import atomic_path


def save_onnx(model: Classifier, path: str | os.PathLike) -> None:
    """The source ONNX file with every initializer that is a param replaced by the model's value."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MissingDependencyError("writing .onnx files needs the onnx package: pip install 'onnx>=1.14'.") from None
    if model.format != "onnx" or not model.source or not os.path.exists(model.source):
        raise SaveError("an ONNX model is written by editing its source file, which is not at hand "
                        f"({model.source!r}); load the model from its .onnx file.")
    proto = read_proto(model.source)
    for k, tensor in enumerate(proto.graph.initializer):
        if tensor.name in model.params:
            dtype = numpy_helper.to_array(tensor).dtype
            value = np.asarray(model.params[tensor.name]).astype(dtype)
            proto.graph.initializer[k].CopyFrom(numpy_helper.from_array(value, tensor.name))
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
