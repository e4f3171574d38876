"""Which weights fine-tuning may move and which make a hidden layer's units, for Keras and ONNX models."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, ROOT
from ncjax.mitigation.weights import UnitReader, hidden_layer, prune_units, trainable_mask

ONNX = ROOT / "tests" / "fixtures" / "onnx"


def _images(model, n=6, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *model.input_shape)).astype(np.float32)


def test_batchnorm_statistics_are_frozen_and_everything_else_trains():
    model = ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "nested.h5")
    flat = jax.tree_util.tree_flatten_with_path(trainable_mask(model))[0]
    frozen = {jax.tree_util.keystr(path) for path, trainable in flat if not trainable}
    assert frozen and all("moving_" in name for name in frozen)
    assert any(trainable for _, trainable in flat)


def test_the_default_layer_is_the_last_hidden_one_and_pruning_silences_its_units(demo_backdoor):
    model, images, _, _ = demo_backdoor
    layer = hidden_layer(model)
    assert (layer.name, layer.units) == ("dense", 512)
    read = UnitReader(model, layer)
    before = read(model.params, images[:8])
    assert before.shape == (8, 512) and before.max() > 0
    pruned = prune_units(model.params, layer, [0, 5, 7])
    after = read(pruned, images[:8])
    assert np.all(after[:, [0, 5, 7]] == 0)
    np.testing.assert_allclose(np.delete(after, [0, 5, 7], axis=1), np.delete(before, [0, 5, 7], axis=1))
    assert np.asarray(model.params["dense"]["kernel"])[:, 0].any()  # the model's own params are untouched


def test_a_conv_layer_is_read_per_channel():
    model = ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "sequential.h5")
    convs = [row.path for row in model.layers if row.class_name == "Conv2D"]
    layer = hidden_layer(model, convs[0])
    values = UnitReader(model, layer)(model.params, _images(model))
    assert values.shape == (6, layer.units)


def test_an_unknown_or_weightless_layer_is_refused_with_the_choices(demo_backdoor):
    model = demo_backdoor[0]
    with pytest.raises(ncjax.MitigationError, match="choose one of: conv2d"):
        hidden_layer(model, "flatten")
    with pytest.raises(ncjax.MitigationError, match="not loaded from a Keras or ONNX"):
        from conftest import tiny_classifier

        hidden_layer(tiny_classifier())


def test_onnx_default_layer_is_read_after_its_activation_and_pruned_through_the_gemm():
    pytest.importorskip("onnx")
    model = ncjax.load_model(ONNX / "dynamo_flatten.onnx")
    layer = hidden_layer(model)
    assert layer.name == "node_relu_1" and layer.units == 16 and layer.unit_axis == 1
    read = UnitReader(model, layer)
    images = _images(model, 12)
    pruned = prune_units(model.params, layer, [1, 2])
    after = read(pruned, images)
    assert np.all(after[:, [1, 2]] == 0)
    np.testing.assert_allclose(np.delete(after, [1, 2], 1), np.delete(read(model.params, images), [1, 2], 1),
                               rtol=1e-5, atol=1e-6)


def test_onnx_conv_nodes_are_pruned_per_channel():
    pytest.importorskip("onnx")
    model = ncjax.load_model(ONNX / "dynamo_flatten.onnx")
    layer = hidden_layer(model, "node_relu")
    assert layer.units == 8
    after = UnitReader(model, layer)(prune_units(model.params, layer, [3]), _images(model))
    assert np.all(after[:, 3] == 0) and after.max() > 0
    with pytest.raises(ncjax.MitigationError, match="no node"):
        hidden_layer(model, "nowhere")


def test_onnx_fine_tuning_moves_layer_weights_not_the_input_scaling():
    pytest.importorskip("onnx")
    model = ncjax.load_model(ONNX / "dynamo_flatten.onnx")
    mask = trainable_mask(model)
    assert mask["val_1"] is False  # the divisor of x / 255
    assert all(mask[name] for name in ("c1.weight", "c1.bias", "fc1.weight", "fc2.bias"))
