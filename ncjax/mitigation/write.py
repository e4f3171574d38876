"""A repaired classifier written back in the format it came in: Keras -> Keras HDF5, ONNX -> the same graph with
its changed initializers."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ncjax.classifier import Classifier
from ncjax.errors import MissingDependencyError, SaveError
from ncjax.keras.save import save_keras_h5
from ncjax.onnx import read_proto


def model_suffix(model: Classifier) -> str:
    """The file suffix the model is written with: .onnx for ONNX models, .h5 for Keras ones."""
    return ".onnx" if model.format == "onnx" else ".h5"


def save_model(model: Classifier, path: str | os.PathLike) -> None:
    """Write `model` in its source format (the suffix of `path` must say the same)."""
    suffix = model_suffix(model)
    if Path(path).suffix.lower() != suffix:
        raise SaveError(f"{os.fspath(path)!r}: a {'ONNX' if suffix == '.onnx' else 'Keras'} model is written as a "
                        f"{suffix} file; name the output ...{suffix}.")
    if suffix == ".onnx":
        save_onnx(model, path)
    else:
        save_keras_h5(model, path)


def save_onnx(model: Classifier, path: str | os.PathLike) -> None:
    """The source ONNX file with every initializer that is a param replaced by the model's value."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MissingDependencyError("writing .onnx files needs the onnx package: pip install 'ncjax[onnx]'.") from None
    if model.format != "onnx" or not model.source or not os.path.exists(model.source):
        raise SaveError("an ONNX model is written by editing its source file, which is not at hand "
                        f"({model.source!r}); load the model from its .onnx file.")
    proto = read_proto(model.source)
    for k, tensor in enumerate(proto.graph.initializer):
        if tensor.name in model.params:
            dtype = numpy_helper.to_array(tensor).dtype
            value = np.asarray(model.params[tensor.name]).astype(dtype)
            proto.graph.initializer[k].CopyFrom(numpy_helper.from_array(value, tensor.name))
    partial = Path(os.fspath(path) + ".partial")
    onnx.save(proto, os.fspath(partial))
    os.replace(partial, path)
