"""What a Keras classifier's weights do: params are keyed by layer path and weight name (kernel, bias, gamma,
moving_mean, ...), so their roles follow from the names and the layers' classes."""
from __future__ import annotations

import os
from typing import Any

import jax

from ncjax.errors import MitigationError
from ncjax.models.classifier import Classifier
from ncjax.models.layer_roles import HiddenLayer, WeightSlice, param_at

# Weights that are statistics, not trained (BatchNormalization's, Normalization's).
STATISTICS = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})
# Weights whose last axis (channels_last) holds one slice per unit.
UNIT_WEIGHTS = {"Dense": ("kernel", "bias"), "Conv1D": ("kernel", "bias"), "Conv2D": ("kernel", "bias"),
                "Conv3D": ("kernel", "bias"), "BatchNormalization": ("gamma", "beta")}


class KerasRoles:
    """The WeightRoles of classifiers built by the Keras importer; they are written back as Keras HDF5."""

    kind, suffix = "Keras", ".h5"

    def trainable_mask(self, model: Classifier) -> Any:
        return jax.tree_util.tree_map_with_path(lambda path, _: _key(path[-1]) not in STATISTICS, model.params)

    def hidden_layer(self, model: Classifier, name: str | None) -> HiddenLayer:
        candidates = [row.path for row in model.layers if row.class_name in UNIT_WEIGHTS and row.param_count]
        if name is None:
            if len(candidates) < 2:
                raise MitigationError("the model has no hidden Dense, Conv or BatchNormalization layer before its "
                                      "output layer to prune or to read; it cannot be pruned or filtered.")
            name = candidates[-2]
        row = next((r for r in model.layers if r.path == name), None)
        if row is None or name not in candidates:
            raise MitigationError(f"layer {name!r} is not a Dense, Conv or BatchNormalization layer of this model; "
                                  f"choose one of: {', '.join(candidates)}.")
        params = param_at(model.params, name.split("/"))
        present = [w for w in UNIT_WEIGHTS[row.class_name] if w in params]
        if UNIT_WEIGHTS[row.class_name][0] not in present:
            raise MitigationError(f"layer {name!r} has no {UNIT_WEIGHTS[row.class_name][0]}: zeroing its "
                                  "weights would not silence its units; choose another layer.")
        weights = tuple(WeightSlice((*name.split("/"), w), -1) for w in present)
        return HiddenLayer(name, int(row.output_shape[-1]), -1, weights)

    def save(self, model: Classifier, path: str | os.PathLike) -> None:
        from ncjax.models.keras.save import save_keras_h5

        save_keras_h5(model, path)

    def reload(self, model: Classifier, path: str | os.PathLike) -> Classifier:
        from ncjax.models.loading import load_model

        return load_model(path, input_shape=model.input_shape)


def _key(entry) -> str:
    return str(getattr(entry, "key", entry))
