"""Model structure: unsupported and unsafe layers are refused with the layer named; graphs wire correctly."""
from __future__ import annotations

import copy
import json

import h5py
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, edit_model_config, relative_error

SEQUENTIAL_H5 = KERAS_FIXTURES / "tfkeras" / "sequential.h5"
NESTED_H5 = KERAS_FIXTURES / "tfkeras" / "nested.h5"


def _with_config(tmp_path, edit, src=SEQUENTIAL_H5):
    return edit_model_config(tmp_path, edit, src)


def _insert_after_first(layer):
    def edit(config):
        config["config"]["layers"].insert(2, layer)
    return edit


def test_lambda_layer_is_refused_and_never_run(tmp_path):
    lam = {"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAAAAAAA", None, None],
                                              "function_type": "lambda"}}
    path = _with_config(tmp_path, _insert_after_first(lam))
    with pytest.raises(ncjax.UnsupportedLayerError) as info:
        ncjax.load_model(path)
    message = str(info.value)
    assert "'evil'" in message and "Lambda" in message and "position 2" in message
    assert "bytecode" in message and "Supported layers:" in message and "Conv2D" in message


def test_custom_layer_is_refused(tmp_path):
    custom = {"class_name": "MyAttention", "config": {"name": "attn"}}
    path = _with_config(tmp_path, _insert_after_first(custom))
    with pytest.raises(ncjax.UnsupportedLayerError, match="'attn' \\(class MyAttention.*custom layers are never"):
        ncjax.load_model(path)


def test_channels_first_is_refused(tmp_path):
    def edit(config):
        config["config"]["layers"][1]["config"]["data_format"] = "channels_first"
    with pytest.raises(ncjax.UnsupportedModelError, match="channels_first"):
        ncjax.load_model(_with_config(tmp_path, edit))


def test_unknown_activation_is_refused(tmp_path):
    def edit(config):
        config["config"]["layers"][1]["config"]["activation"] = "my_custom_act"
    with pytest.raises(ncjax.UnsupportedLayerError, match="my_custom_act.*Supported activations"):
        ncjax.load_model(_with_config(tmp_path, edit))


def test_two_inputs_are_refused(tmp_path):
    def edit(config):
        layers = config["config"]["layers"]
        extra = copy.deepcopy(layers[0])
        extra["name"] = extra["config"]["name"] = "second_input"
        layers.insert(0, extra)
        config["config"]["input_layers"].append(["second_input", 0, 0])
    with pytest.raises(ncjax.UnsupportedModelError, match="2 inputs"):
        ncjax.load_model(_with_config(tmp_path, edit, src=NESTED_H5))


def test_dangling_reference(tmp_path):
    def edit(config):
        config["config"]["output_layers"] = [["no_such_layer", 0, 0]]
    with pytest.raises(ncjax.ModelFileError, match="no_such_layer"):
        ncjax.load_model(_with_config(tmp_path, edit, src=NESTED_H5))


def test_sigmoid_output_warns_and_is_kept(tmp_path):
    def edit(config):
        config["config"]["layers"][-1]["config"]["activation"] = "sigmoid"
    path = _with_config(tmp_path, edit)
    with pytest.warns(UserWarning, match="'sigmoid', not softmax"):
        classifier = ncjax.load_model(path)
    assert classifier.output_activation == "sigmoid"
    x = np.load(KERAS_FIXTURES / "tfkeras" / "sequential.npz")["x"]
    out = np.asarray(classifier(x))
    assert out.min() >= 0 and out.max() <= 1


def test_keras2_nested_call_numbering_from_references(tmp_path):
    """tf.keras numbers a nested model's calls from 1 (its own node 0 is not saved); the loader must read
    ('inner_fn', 2) as the second call, and would wire the graph wrongly otherwise."""
    golden = np.load(KERAS_FIXTURES / "tfkeras" / "nested.npz")
    config = json.loads(h5py.File(NESTED_H5, "r").attrs["model_config"])
    inner = next(layer for layer in config["config"]["layers"] if layer["name"] == "inner_fn")
    assert [node[0][1] for node in inner["inbound_nodes"]] == [1, 1]  # refs to inner_seq call 1, inner_fn call 1
    classifier = ncjax.load_model(NESTED_H5)
    assert relative_error(classifier(golden["x"]), golden["logits"]) <= 1e-5


def test_summary_lists_nested_layers():
    classifier = ncjax.load_model(NESTED_H5)
    paths = [layer.path for layer in classifier.layers]
    assert "inner_seq" in paths and any(p.startswith("inner_fn/") for p in paths)
    inner = next(layer for layer in classifier.layers if layer.path == "inner_seq")
    parts = [layer for layer in classifier.layers if layer.path.startswith("inner_seq/")]
    assert inner.param_count == sum(layer.param_count for layer in parts) > 0
    assert all(layer.depth == 1 for layer in parts)
    assert classifier.param_count == sum(layer.param_count for layer in classifier.layers if layer.depth == 0)
