"""What mitigation does with a classifier's weights: which ones fine-tuning may change and which make a hidden
layer's units (asked of the importer that read the model: Classifier.roles), zeroing units, and reading them."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.errors import MitigationError
from ncjax.models.classifier import Classifier, Params
from ncjax.models.layer_roles import HiddenLayer, WeightSlice, param_at

__all__ = ["HiddenLayer", "UnitReader", "WeightSlice", "hidden_layer", "prune_units", "trainable_mask"]


def trainable_mask(model: Classifier) -> Any:
    """A pytree like model.params: True where fine-tuning may change the weight. Statistics stay frozen, and so
    do constants that are not a layer's weights (an ONNX graph's input scaling such as x / 255); a classifier
    built by hand (no importer) trains every weight."""
    if model.roles is None:
        return jax.tree_util.tree_map(lambda _: True, model.params)
    return model.roles.trainable_mask(model)


def hidden_layer(model: Classifier, name: str | None = None) -> HiddenLayer:
    """The layer `name` (default: the last hidden layer with weights, before the output layer)."""
    if model.layer_output is None or model.roles is None:
        raise MitigationError("this classifier cannot show its hidden layers (it was not loaded from a Keras or "
                              "ONNX file); pruning and input filters need one that was.")
    return model.roles.hidden_layer(model, name)


def prune_units(params: Params, layer: HiddenLayer, units) -> Params:
    """params with the weights that make `units` of `layer` set to zero."""
    units = np.asarray(units, np.int64)
    if units.size == 0:
        return params
    out = jax.tree_util.tree_map(lambda a: a, params)  # a copy of the containers, arrays shared
    for weight in layer.weights:
        holder = param_at(out, weight.path[:-1]) if len(weight.path) > 1 else out
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
