"""Reading Keras model files: the architecture (JSON config) and the weights, nothing else.

Nothing from the file is ever executed: configs are parsed as JSON, weights are read as plain arrays, and
neither pickle nor Keras' own deserialization is involved.

Formats:
- legacy HDF5 full model (standalone Keras 2.1-2.3, tf.keras 2.x, Keras 3 `.h5`): attribute `model_config`,
  weights under `model_weights/<layer>/` listed in order by the `weight_names` attribute;
- Keras 3 `.keras` zip: `config.json` + `model.weights.h5` with `layers/<key>/vars/<i>`;
- weights-only HDF5 (legacy layout at the file root, or the Keras 3 `layers/.../vars` layout) together with
  an architecture JSON such as `model.to_json()` writes.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import ModelFileError, ModelNotFoundError
from ncjax.models.safe_files import check_hdf5_contained, check_one_format, check_regular_file, file_formats

# Layer path: the names from the top-level model down to the layer, e.g. ("inner_seq", "conv2d_11").
LayerPath = tuple[str, ...]

# A .keras archive should hold a config and a weights file; refuse members that inflate beyond this (the weights
# are inflated in memory).
_MAX_ZIP_MEMBER_BYTES = 2 << 30


def _text(value: Any) -> str:
    """HDF5 attributes are bytes (Keras 2.2, h5py 2) or str (tf.keras 2.x, h5py 3)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf8")
    return str(value)


def _text_list(group: h5py.Group, attr: str) -> list[str]:
    """A list-of-strings attribute; Keras splits long ones into `attr0`, `attr1`, ... chunks."""
    if attr in group.attrs:
        values = group.attrs[attr]
    elif f"{attr}0" in group.attrs:
        values = []
        chunk = 0
        while f"{attr}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{attr}{chunk}"])
            chunk += 1
    else:
        return []
    # An empty list is stored as an empty float array.
    return [_text(v) for v in np.asarray(values).ravel() if isinstance(v, (bytes, str, np.bytes_, np.str_))]


@dataclass(frozen=True)
class ModelFile:
    """What a Keras file holds, read into memory: architecture config, weights, and provenance."""

    config: dict[str, Any]  # {"class_name": "Sequential" | "Functional" | "Model", "config": {...}}
    weights: WeightSource
    format: str  # "keras-h5", "keras-zip" or "keras-weights"
    keras_version: str | None


class WeightSource:
    """The weights of each layer, in the layer's own order, looked up by layer path."""

    def __init__(self, by_path: dict[LayerPath, list[np.ndarray]], *, nested_key: str, where: str):
        self._by_path = by_path
        self._nested_key = nested_key  # "leaf": nested layers keyed (top, leaf); "full": by the full path
        self.where = where

    def get(self, path: LayerPath, class_keys: LayerPath = ()) -> list[np.ndarray]:
        """The arrays of the layer at `path`; an empty list for layers that store none.

        `class_keys` is the same path spelled as older Keras 3 versions key it (snake-cased class names,
        deduplicated in layer order), used when the file does not record layer names.
        """
        if len(path) > 1 and self._nested_key == "leaf":
            path = (path[0], path[-1])
        if path in self._by_path:
            return self._by_path[path]
        return self._by_path.get(class_keys, [])

    def paths(self) -> list[LayerPath]:
        return [p for p, arrays in self._by_path.items() if arrays]


def read_model_file(path: str | os.PathLike, *, architecture: str | os.PathLike | dict | None = None) -> ModelFile:
    """Read a Keras model file (and optionally a separate architecture JSON) into memory."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelNotFoundError(f"model file not found: {path!r}")
    if os.path.isdir(path):
        raise ModelFileError(
            f"{path!r} is a directory. ncjax reads Keras .h5 and .keras files; convert a TensorFlow "
            "SavedModel to ONNX first: ncjax convert DIR model.onnx (needs pip install 'onnx>=1.14' 'tf2onnx>=1.16' "
            "tensorflow)."
        )
    check_regular_file(path)
    formats = file_formats(path)
    check_one_format(path, formats)
    arch_config = _architecture_config(architecture) if architecture is not None else None
    if "zip" in formats:
        model_file = _read_keras_zip(path)
        return model_file if arch_config is None else ModelFile(
            arch_config, model_file.weights, model_file.format, model_file.keras_version)
    if "hdf5" not in formats:
        raise ModelFileError(
            f"{path!r} is neither an HDF5 (.h5) nor a Keras zip (.keras) file"
            " (it may be truncated, or another format such as a pickle or ONNX file)."
        )
    try:
        with h5py.File(path, "r") as f:
            check_hdf5_contained(f, repr(path))
            return _read_hdf5(f, path, arch_config)
    except (OSError, KeyError, RuntimeError) as e:  # h5py's errors for damaged files
        raise ModelFileError(f"cannot read {path!r}: the HDF5 file is damaged or truncated ({e}).") from e


def _parse_json(text: str | bytes, where: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"the model architecture in {where} is not valid JSON ({e}).") from e
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ModelFileError(
            f"the model architecture in {where} is not a Keras model config "
            "(expected a JSON object with 'class_name' and 'config', as model.to_json() writes)."
        )
    return config


def _architecture_config(architecture: str | os.PathLike | dict) -> dict[str, Any]:
    if isinstance(architecture, dict):
        return _parse_json(json.dumps(architecture), "the architecture dict")
    text = os.fspath(architecture)
    if os.path.exists(text):
        with open(text, "rb") as f:
            return _parse_json(f.read(), repr(text))
    if text.lstrip().startswith("{"):
        return _parse_json(text, "the architecture JSON string")
    raise ModelNotFoundError(f"architecture file not found: {text!r}")


def _read_hdf5(f: h5py.File, path: str, architecture: dict[str, Any] | None) -> ModelFile:
    keras_version = _text(f.attrs["keras_version"]) if "keras_version" in f.attrs else None
    if "model_config" in f.attrs and "model_weights" in f:
        config = architecture or _parse_json(f.attrs["model_config"], repr(path))
        group = f["model_weights"]
        if keras_version is None and "keras_version" in group.attrs:
            keras_version = _text(group.attrs["keras_version"])
        return ModelFile(config, _read_legacy_weights(group, path), "keras-h5", keras_version)
    weights_only = "layer_names" in f.attrs or "layer_names0" in f.attrs or "layers" in f
    if not weights_only:
        raise ModelFileError(
            f"{path!r} is an HDF5 file but not a Keras model: it has no 'model_config' attribute and no "
            "Keras weights. Save the full model with model.save('model.h5')."
        )
    if architecture is None:
        raise ModelFileError(
            f"{path!r} holds weights only (saved with model.save_weights), not the architecture. Pass the "
            "architecture too, the JSON from model.to_json() (--architecture model.json on the command line, "
            "load_model(path, architecture='model.json') in Python), or save the full model with "
            "model.save('model.h5')."
        )
    config = architecture
    if "layers" in f and "layer_names" not in f.attrs:
        weights = _read_keras3_weights(f, path)
        keras_version = keras_version or _text(config.get("keras_version", "3"))
    else:
        weights = _read_legacy_weights(f, path)
        keras_version = keras_version or config.get("keras_version")
    return ModelFile(config, weights, "keras-weights", keras_version)


def _group(parent: h5py.Group, name: str, where: str) -> h5py.Group:
    """A member that Keras writes as a group; a dataset in its place (even a 10**9-row one) is refused unread."""
    member = parent[name]
    if not isinstance(member, h5py.Group):
        raise ModelFileError(f"{where}: {quoted(member.name)} is a {type(member).__name__}, where Keras writes a "
                             "group of weights; the file is malformed.")
    return member


def _read_legacy_weights(group: h5py.Group, path: str) -> WeightSource:
    """Keras 2 / Keras 3 legacy layout: one group per top-level layer, `weight_names` in layer order.

    A nested model's group holds the weights of all its layers; each weight name's second-to-last part
    names the (innermost) layer it belongs to, e.g. 'inner_seq/conv2d_11/kernel' or 'conv2d_11/kernel:0'.
    """
    by_path: dict[LayerPath, list[np.ndarray]] = {}
    layer_names = _text_list(group, "layer_names")
    for layer_name in layer_names:
        if layer_name not in group:
            raise ModelFileError(f"{path!r} lists layer {quoted(layer_name)} but stores no weights group for it.")
        layer_group = _group(group, layer_name, path)
        for weight_name in _text_list(layer_group, "weight_names"):
            if weight_name not in layer_group:
                raise ModelFileError(
                    f"{path!r}: weight {quoted(weight_name)} of layer {quoted(layer_name)} is listed but missing."
                )
            array = np.asarray(layer_group[weight_name])
            parts = weight_name.split("/")
            by_path.setdefault((layer_name,), []).append(array)
            if len(parts) >= 2:
                by_path.setdefault((layer_name, parts[-2]), []).append(array)
    return WeightSource(by_path, nested_key="leaf", where=repr(path))


def _read_keras3_weights(f: h5py.Group, where: str) -> WeightSource:
    """Keras 3 layout: `layers/<key>/vars/<i>`, nested models under `layers/<key>/layers/...`.

    Each `vars` group of recent Keras 3 versions names its layer in the attribute `name`; older ones
    are keyed by snake-cased class name only, which `WeightSource.get(..., class_keys)` resolves.
    """
    by_path: dict[LayerPath, list[np.ndarray]] = {}

    def walk(group: h5py.Group, prefix: LayerPath) -> None:
        if "layers" not in group:
            return
        layers = _group(group, "layers", where)
        for key in layers:
            sub = _group(layers, key, where)
            vars_group = _group(sub, "vars", where) if "vars" in sub else None
            name = key
            arrays: list[np.ndarray] = []
            if vars_group is not None:
                if "name" in vars_group.attrs:
                    name = _text(vars_group.attrs["name"])
                arrays = [np.asarray(vars_group[str(i)]) for i in range(len(vars_group))]
            by_path[prefix + (name,)] = arrays
            walk(sub, prefix + (name,))

    walk(f, ())
    return WeightSource(by_path, nested_key="full", where=where)


def _read_keras_zip(path: str) -> ModelFile:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = {"config.json", "model.weights.h5"} - names
            if missing:
                raise ModelFileError(
                    f"{path!r} is a zip file but not a Keras 3 .keras archive: missing {sorted(missing)}."
                )
            for name in ("config.json", "model.weights.h5", "metadata.json"):
                if name in names and archive.getinfo(name).file_size > _MAX_ZIP_MEMBER_BYTES:
                    raise ModelFileError(f"{path!r}: {name} is implausibly large; refusing to inflate it.")
            config = _parse_json(archive.read("config.json"), f"{path!r} (config.json)")
            metadata = {}
            if "metadata.json" in names:
                try:
                    metadata = json.loads(archive.read("metadata.json"))
                except ValueError:
                    metadata = {}
            weights_bytes = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, RuntimeError, EOFError) as e:  # damaged, encrypted, or an unknown compression
        raise ModelFileError(f"cannot read {path!r}: the zip archive is damaged or unreadable "
                             f"({type(e).__name__}: {e}).") from None
    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as f:
            check_hdf5_contained(f, f"{path!r} (model.weights.h5)")
            weights = _read_keras3_weights(f, f"{path!r} (model.weights.h5)")
    except OSError as e:
        raise ModelFileError(f"cannot read model.weights.h5 inside {path!r}: {e}.") from e
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return ModelFile(config, weights, "keras-zip", version or "3")
