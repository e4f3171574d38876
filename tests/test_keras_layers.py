"""Layer builders in isolation: fast paths equal the general ones, formulas match Keras' definitions."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import ncjax
from ncjax.models.keras.layers import LAYER_BUILDERS, LayerSpec


def _build(class_name, config, in_shapes, weights=(), keras_version="2.15.0"):
    spec = LayerSpec("layer", class_name, config, "layer 'layer'", keras_version)
    return LAYER_BUILDERS[class_name](spec, list(weights), [tuple(s) for s in in_shapes])


def _run(layer, *xs):
    return np.asarray(layer.call(layer.params, [jnp.asarray(x) for x in xs]))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(2, 9), w=st.integers(2, 9), p=st.integers(1, 3), q=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16))
def test_blockwise_pooling_equals_reduce_window(h, w, p, q, padding, seed):
    x = np.random.default_rng(seed).normal(size=(2, h, w, 3)).astype(np.float32)
    if padding == "valid" and (h < p or w < q):
        return
    pads = "VALID" if padding == "valid" else "SAME"
    for class_name, init, op in (("MaxPooling2D", -np.inf, lax.max), ("AveragePooling2D", 0.0, lax.add)):
        layer = _build(class_name, {"pool_size": [p, q], "strides": None, "padding": padding}, [(None, h, w, 3)])
        expected = lax.reduce_window(x, init, op, (1, p, q, 1), (1, p, q, 1), pads)
        if class_name == "AveragePooling2D":
            count = lax.reduce_window(np.ones((1, h, w, 1), np.float32), 0.0, lax.add, (1, p, q, 1),
                                      (1, p, q, 1), pads)
            expected = expected / count
        np.testing.assert_allclose(_run(layer, x), expected, rtol=1e-6, atol=1e-6)


def test_average_pooling_same_excludes_padding():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    layer = _build("AveragePooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "same"}, [(None, 3, 3, 1)])
    out = _run(layer, x)[0, :, :, 0]
    # Corner windows cover 4, 2, 2 and 1 real pixels; TensorFlow divides by those counts.
    np.testing.assert_allclose(out, [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])


def test_relu_layer_formula():
    x = np.array([[-2.0, 0.0, 0.2, 0.5, 1.0, 3.0]], np.float32)
    layer = _build("ReLU", {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.3}, [(None, 6)])
    np.testing.assert_allclose(_run(layer, x), [[-0.23, -0.03, -0.01, 0.5, 1.0, 1.5]], rtol=1e-6)


def test_leaky_relu_reads_alpha_or_negative_slope():
    x = np.array([[-1.0, 2.0]], np.float32)
    assert _run(_build("LeakyReLU", {"alpha": 0.3}, [(None, 2)]), x)[0, 0] == pytest.approx(-0.3)
    assert _run(_build("LeakyReLU", {"negative_slope": 0.1}, [(None, 2)]), x)[0, 0] == pytest.approx(-0.1)


def test_depthwise_channel_order_matches_tensorflow():
    """Output channel c·multiplier + m: a 1x1 depthwise kernel makes it easy to see."""
    kernel = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]], np.float32)  # (1, 1, cin=2, multiplier=2)
    layer = _build("DepthwiseConv2D", {"kernel_size": [1, 1], "depth_multiplier": 2, "use_bias": False,
                                       "activation": "linear"}, [(None, 1, 1, 2)], [kernel])
    np.testing.assert_allclose(_run(layer, np.array([[[[1.0, 2.0]]]], np.float32))[0, 0, 0], [1, 10, 200, 2000])


def test_conv2d_same_padding_with_stride_pads_the_end():
    """TensorFlow puts the odd padding pixel after the input; a sum kernel shows which pixels were seen."""
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 4, 1)
    layer = _build("Conv2D", {"filters": 1, "kernel_size": [1, 2], "strides": [1, 2], "padding": "same",
                              "use_bias": False, "activation": "linear"}, [(None, 1, 4, 1)],
                   [np.ones((1, 2, 1, 1), np.float32)])
    np.testing.assert_allclose(_run(layer, x)[0, 0, :, 0], [3.0, 7.0])


def test_batch_norm_inference_formula():
    gamma, beta = np.array([2.0], np.float32), np.array([0.5], np.float32)
    mean, var = np.array([1.0], np.float32), np.array([4.0], np.float32)
    layer = _build("BatchNormalization", {"epsilon": 0.0, "axis": -1}, [(None, 3, 1)], [gamma, beta, mean, var])
    np.testing.assert_allclose(_run(layer, np.array([[[1.0], [3.0], [-1.0]]], np.float32))[0, :, 0],
                               [0.5, 2.5, -1.5], rtol=1e-6)


def test_normalization_from_config_and_invert():
    config = {"axis": -1, "mean": [1.0, 2.0], "variance": [4.0, 9.0]}
    x = np.array([[3.0, 8.0]], np.float32)
    np.testing.assert_allclose(_run(_build("Normalization", config, [(None, 2)]), x), [[1.0, 2.0]], rtol=1e-6)
    inverse = _build("Normalization", {**config, "invert": True}, [(None, 2)])
    np.testing.assert_allclose(_run(inverse, np.array([[1.0, 2.0]], np.float32)), x, rtol=1e-6)


def test_merge_arity_checked():
    with pytest.raises(ncjax.UnsupportedLayerError, match="exactly 2 inputs"):
        _build("Subtract", {}, [(None, 2)] * 3)


def test_padding_modes_refused():
    with pytest.raises(ncjax.UnsupportedLayerError, match="causal"):
        _build("Conv2D", {"filters": 1, "kernel_size": 1, "padding": "causal"}, [(None, 2, 2, 1)],
               [np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])


def test_bilinear_upsampling_from_standalone_keras2_is_refused():
    config = {"size": [2, 2], "interpolation": "bilinear"}
    _build("UpSampling2D", config, [(None, 2, 2, 1)], keras_version="2.3.0-tf")  # tf.keras: fine
    with pytest.raises(ncjax.UnsupportedLayerError, match="half-pixel"):
        _build("UpSampling2D", config, [(None, 2, 2, 1)], keras_version="2.2.4")


def test_layers_are_batch_independent_under_vmap():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 4)).astype(np.float32)
    layer = _build("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False,
                              "activation": "relu"}, [(None, 5, 5, 2)], [kernel])
    x = np.random.default_rng(1).normal(size=(3, 2, 5, 5, 2)).astype(np.float32)
    stacked = jax.vmap(lambda xi: layer.call(layer.params, [xi]))(jnp.asarray(x))
    np.testing.assert_allclose(stacked[2], _run(layer, x[2]), rtol=1e-6, atol=1e-6)
