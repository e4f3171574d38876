"""save_keras_h5: a Classifier as a Keras 2 HDF5 full model, laid out as tf.keras 2.x writes it.

Real Keras (tf.keras 2.x, and Keras 3 through its legacy loader) reads these files; so does load_model.
The architecture is the classifier's `keras_config`, so a final softmax removed on import is written back.
"""
from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from ncjax.errors import SaveError
from ncjax.models.classifier import Classifier
from ncjax.models.keras.graph import MODEL_CLASSES, entry_name, layer_list
from ncjax.models.safe_files import atomic_path

# The layout is tf.keras 2.x's. The version attribute keeps the source's (activations such as hard_sigmoid
# changed meaning in Keras 3); models ncjax made itself say 2.15.0.
KERAS_FORMAT_VERSION = "2.15.0"
# Keras lists a layer's trainable weights first, then the non-trainable ones. Params are dicts, which JAX
# pytrees keep in sorted key order, so the order Keras expects is restored from the names.
_NON_TRAINABLE = ("moving_mean", "moving_variance", "mean", "variance", "count")
_KERAS_ORDER = ("depthwise_kernel", "pointwise_kernel", "kernel", "bias", "gamma", "beta", "alpha", *_NON_TRAINABLE)



def _weights(config: dict[str, Any], params: dict[str, Any], prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """(weight name, array) of one layer in Keras' order; nested models flattened, trainable first."""
    if config["class_name"] not in MODEL_CLASSES:
        unknown = set(params) - set(_KERAS_ORDER)
        if unknown:
            raise SaveError(f"layer {config['config'].get('name')!r} has weights {sorted(unknown)} ncjax cannot order.")
        items = [(f"{prefix}{k}:0", np.asarray(params[k])) for k in _KERAS_ORDER if k in params]
        return [i for i in items if i[0].split("/")[-1][:-2] not in _NON_TRAINABLE] + \
               [i for i in items if i[0].split("/")[-1][:-2] in _NON_TRAINABLE]
    collected = []
    for entry in layer_list(config):
        name = entry_name(entry)
        if name in params:
            collected += _weights(entry, params[name], f"{name}/")
    trainable = [i for i in collected if i[0].split("/")[-1][:-2] not in _NON_TRAINABLE]
    return trainable + [i for i in collected if i[0].split("/")[-1][:-2] in _NON_TRAINABLE]


def save_keras_h5(classifier: Classifier, path: str | os.PathLike) -> None:
    """Write `classifier` as a Keras 2 HDF5 full model (model_config + model_weights)."""
    config = classifier.keras_config
    if config is None:
        raise SaveError(
            "this classifier has no Keras architecture (keras_config); only models loaded from Keras files or "
            "trained by ncjax.lab.inject can be saved as Keras HDF5."
        )
    params = dict(classifier.params)
    version = (classifier.keras_version or KERAS_FORMAT_VERSION).encode()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:  # a reader never sees half a model
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = version
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        group = f.create_group("model_weights")
        entries = layer_list(config)
        names = [entry_name(e) for e in entries]
        group.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = version
        for entry, name in zip(entries, names):
            layer_group = group.create_group(name)
            weights = _weights(entry, params.get(name, {}), f"{name}/")
            layer_group.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in weights]) if weights \
                else np.array([], dtype=np.float64)
            for weight_name, array in weights:
                layer_group.create_dataset(weight_name, data=np.asarray(array, np.float32))
