"""What a classifier's weights do, as its importer knows it: which weights fine-tuning may change, which make a
hidden layer's units, and how the model is written back. Mitigation asks these questions through `WeightRoles`
and never looks at a file format; each importer (ncjax.models.keras, ncjax.models.onnx) answers them for its own
models."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ncjax.models.classifier import Classifier


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


class WeightRoles(Protocol):
    """An importer's answers about its models' weights."""

    kind: str  # what a person calls such a model ("Keras", "ONNX")
    suffix: str  # the file suffix a model of this kind is written with (".h5", ".onnx")

    def trainable_mask(self, model: Classifier) -> Any:
        """A pytree like model.params: True where fine-tuning may change the weight."""

    def hidden_layer(self, model: Classifier, name: str | None) -> HiddenLayer:
        """The layer `name` (default: the last hidden layer with weights, before the output layer)."""

    def save(self, model: Classifier, path: str | os.PathLike) -> None:
        """Write `model` (its params possibly changed) in its own format."""

    def reload(self, model: Classifier, path: str | os.PathLike) -> Classifier:
        """What `save` wrote at `path`, read back as this importer reads it."""


def param_at(params: Any, path) -> Any:
    """The entry of a params pytree at `path` (its keys from the top)."""
    for key in path:
        params = params[key]
    return params
