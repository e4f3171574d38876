"""Reading Keras files: every malformed input gives one clear ncjax error, never a raw h5py/KeyError."""
from __future__ import annotations

import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, edit_model_config
from ncjax.models.keras.files import read_model_file

SEQUENTIAL_H5 = KERAS_FIXTURES / "tfkeras" / "sequential.h5"


def _copy(tmp_path, src=SEQUENTIAL_H5, name="model.h5"):
    dst = tmp_path / name
    shutil.copy(src, dst)
    return dst


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(ncjax.ModelNotFoundError, match="not found") as info:
        ncjax.load_model(tmp_path / "nope.h5")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ncjax.NCJaxError)


def test_directory_is_refused(tmp_path):
    with pytest.raises(ncjax.ModelFileError, match="directory"):
        ncjax.load_model(tmp_path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x80\x04\x95 not a model, maybe a pickle")
    with pytest.raises(ncjax.ModelFileError, match="neither an HDF5"):
        ncjax.load_model(path)


def test_truncated_hdf5(tmp_path):
    data = SEQUENTIAL_H5.read_bytes()
    path = tmp_path / "model.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ncjax.ModelFileError) as info:
        ncjax.load_model(path)
    assert isinstance(info.value, ValueError)


def test_hdf5_without_model_config(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["X_test"] = np.zeros((2, 3))
    with pytest.raises(ncjax.ModelFileError, match="no 'model_config'"):
        ncjax.load_model(path)


def test_weights_only_needs_architecture():
    with pytest.raises(ncjax.ModelFileError, match="weights only.*architecture="):
        ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "sequential_weights.h5")
    with pytest.raises(ncjax.ModelFileError, match="weights only"):
        ncjax.load_model(KERAS_FIXTURES / "keras3" / "sequential.weights.h5")


def test_architecture_as_string_or_dict():
    text = (KERAS_FIXTURES / "keras3" / "sequential.json").read_text()
    weights = KERAS_FIXTURES / "keras3" / "sequential.weights.h5"
    a = ncjax.load_model(weights, architecture=text)
    b = ncjax.load_model(weights, architecture=json.loads(text))
    x = np.load(KERAS_FIXTURES / "keras3" / "sequential.npz")["x"]
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(ncjax.ModelFileError, match="not valid JSON"):
        ncjax.load_model(weights, architecture="{broken")
    with pytest.raises(ncjax.ModelNotFoundError, match="architecture file not found"):
        ncjax.load_model(weights, architecture="missing.json")


def test_invalid_model_config_json(tmp_path):
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = "{not json"
    with pytest.raises(ncjax.ModelFileError, match="not valid JSON"):
        ncjax.load_model(path)


def test_missing_weight_dataset(tmp_path):
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]
        name = next(n for n in group.attrs["layer_names"] if len(group[n].attrs["weight_names"]))
        weight = group[name].attrs["weight_names"][0]
        del group[name][weight]
    with pytest.raises(ncjax.ModelFileError, match="listed but missing"):
        ncjax.load_model(path)


def _first(config, class_name):
    return [layer for layer in config["config"]["layers"] if layer["class_name"] == class_name][0]


def test_weight_shape_mismatch_names_the_layer(tmp_path):
    def edit(config):
        _first(config, "Dense")["config"]["units"] += 1

    path = edit_model_config(tmp_path, edit)
    with pytest.raises(ncjax.ModelFileError, match=r"'dense_11'.*weight 'kernel' has shape"):
        ncjax.load_model(path)


def test_weight_count_mismatch(tmp_path):
    def edit(config):
        _first(config, "Conv2D")["config"]["use_bias"] = False

    with pytest.raises(ncjax.ModelFileError, match="stores 2 weight array.*needs 1"):
        ncjax.load_model(edit_model_config(tmp_path, edit))


def test_weights_of_another_architecture(tmp_path):
    with pytest.raises(ncjax.ModelFileError):
        ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "conv_weights.h5",
                         architecture=KERAS_FIXTURES / "tfkeras" / "sequential.json")


def test_keras_zip_errors(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ncjax.ModelFileError, match="missing.*model.weights.h5"):
        ncjax.load_model(path)
    good = (KERAS_FIXTURES / "keras3" / "sequential.keras").read_bytes()
    broken = tmp_path / "broken.keras"
    broken.write_bytes(good[: len(good) - 200])
    with pytest.raises(ncjax.ModelFileError):
        ncjax.load_model(broken)


def test_long_attributes_split_into_chunks(tmp_path):
    """Keras splits attributes over 64 KB into layer_names0, layer_names1, ...; read them back whole."""
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]
        names = list(group.attrs["layer_names"])
        del group.attrs["layer_names"]
        group.attrs["layer_names0"] = np.array(names[:3], dtype=object)
        group.attrs["layer_names1"] = np.array(names[3:], dtype=object)
    model_file = read_model_file(path)
    original = read_model_file(SEQUENTIAL_H5)
    assert model_file.weights.paths() == original.weights.paths()
