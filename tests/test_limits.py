"""The sizes a model may declare: activations per image and the number of layers or nodes."""
from __future__ import annotations

import pytest

import ncjax
from ncjax.models.classifier import LayerSummary
from ncjax.models.limits import MAX_GRAPH_NODES, check_activation_sizes, check_graph_size, keras_layer_count


def test_absurd_activation_sizes_are_refused_before_anything_is_allocated():
    fine = [LayerSummary("conv", "Conv2D", (None, 32, 32, 64), 0, 0)]
    check_activation_sizes(fine, (32, 32, 3), "m.h5")
    with pytest.raises(ncjax.ModelFileError, match="the input has shape \\(100000, 100000, 3\\)"):
        check_activation_sizes(fine, (100_000, 100_000, 3), "m.h5")
    upsampled = [LayerSummary("up", "UpSampling2D", (None, 32_000_000, 32_000_000, 3), 0, 0)]
    with pytest.raises(ncjax.ModelFileError, match="layer 'up'"):
        check_activation_sizes(upsampled, (32, 32, 3), "m.h5")
    cropped = [LayerSummary("crop", "Cropping2D", (None, 0, 32, 3), 0, 0)]
    with pytest.raises(ncjax.ModelFileError, match="layer 'crop'"):
        check_activation_sizes(cropped, (32, 32, 3), "m.h5")


def test_the_number_of_layers_is_bounded():
    check_graph_size(MAX_GRAPH_NODES, "nodes", "m.onnx")
    with pytest.raises(ncjax.UnsupportedModelError, match=f"m.onnx has {MAX_GRAPH_NODES + 1} nodes"):
        check_graph_size(MAX_GRAPH_NODES + 1, "nodes", "m.onnx")


def _layers(count, nested=None):
    layers = [{"class_name": "Dense", "config": {"name": f"d{i}"}} for i in range(count)]
    return layers + ([nested] if nested else [])


def test_keras_layers_are_counted_in_nested_models_and_old_sequential_lists():
    inner = {"class_name": "Sequential", "config": {"layers": _layers(3)}}
    assert keras_layer_count({"class_name": "Functional", "config": {"layers": _layers(2, inner)}}) == 6
    assert keras_layer_count({"class_name": "Sequential", "config": _layers(4)}) == 4  # Keras 2.2's list form
    assert keras_layer_count({"class_name": "Sequential", "config": "junk"}) == 0


def test_a_keras_layer_applied_many_times_counts_each_call():
    shared = {"class_name": "Dense", "config": {"name": "shared"}, "inbound_nodes": [[["x", 0, 0, {}]]] * 700}
    config = {"class_name": "Functional", "config": {"layers": [shared, *_layers(2)]}}
    assert keras_layer_count(config) == 702
    inner = {"class_name": "Sequential", "config": {"layers": _layers(9)}, "inbound_nodes": [[["x", 0, 0, {}]]] * 3}
    assert keras_layer_count({"class_name": "Functional", "config": {"layers": [inner]}}) == 3 * 10
    with pytest.raises(ncjax.UnsupportedModelError, match="1400 layer calls"):
        check_graph_size(keras_layer_count({"class_name": "Functional", "config": {"layers": [shared, shared]}}),
                         "layer calls", "m.h5")
