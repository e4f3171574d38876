"""A repaired classifier written back in the format it came in (Keras -> Keras HDF5, ONNX -> the same graph with
its changed initializers), by the importer that read it."""
from __future__ import annotations

import os
from pathlib import Path

from ncjax.errors import SaveError
from ncjax.models.classifier import Classifier
from ncjax.models.layer_roles import WeightRoles


def _roles(model: Classifier) -> WeightRoles:
    if model.roles is None:
        raise SaveError("this classifier was not read from a model file (ncjax.load_model), so ncjax does not know "
                        "how to write it back.")
    return model.roles


def model_suffix(model: Classifier) -> str:
    """The file suffix the model is written with: its importer's (.h5 for Keras models, .onnx for ONNX ones)."""
    return _roles(model).suffix


def save_model(model: Classifier, path: str | os.PathLike) -> None:
    """Write `model` in its source format (the suffix of `path` must say the same)."""
    suffix = model_suffix(model)
    if Path(path).suffix.lower() != suffix:
        raise SaveError(f"{os.fspath(path)!r}: this model is written back as a {suffix} file; name the output "
                        f"...{suffix}.")
    _roles(model).save(model, path)


def reload_model(model: Classifier, path: str | os.PathLike) -> Classifier:
    """The model written at `path` by save_model, read back as its importer reads it."""
    return _roles(model).reload(model, path)
