"""Activations by name, with the Keras-version-dependent ones."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ncjax.models.keras.activations import SUPPORTED_ACTIVATIONS, activation_name, get_activation


def test_hard_sigmoid_depends_on_keras_version():
    x = jnp.array([-3.0, -1.0, 0.0, 1.0, 2.6])
    np.testing.assert_allclose(get_activation("hard_sigmoid", keras_major=2)(x), [0.0, 0.3, 0.5, 0.7, 1.0], rtol=1e-6)
    np.testing.assert_allclose(get_activation("hard_sigmoid", keras_major=3)(x), [0.0, 1 / 3, 0.5, 2 / 3, 0.9333333],
                               rtol=1e-6)


@pytest.mark.parametrize("name", SUPPORTED_ACTIVATIONS)
def test_every_supported_name_is_finite_elementwise(name):
    fn = get_activation(name, keras_major=3)
    x = jnp.linspace(-4.0, 4.0, 9)[None, :]
    y = np.asarray(fn(x))
    assert y.shape == x.shape and np.all(np.isfinite(y))


def test_gelu_is_exact_not_tanh_approximation():
    x = jnp.array([1.0])
    # exact: x·Φ(x) = 0.8413447; the tanh approximation gives 0.8411920.
    assert float(get_activation("gelu", keras_major=2)(x)[0]) == pytest.approx(0.8413447, abs=1e-6)


def test_activation_name_forms():
    assert activation_name(None) == "linear"
    assert activation_name("relu") == "relu"
    assert activation_name({"module": "keras.activations", "class_name": "function", "config": "tanh"}) == "tanh"
    assert activation_name({"class_name": "MyAct", "config": {}}) is None
    assert get_activation("no_such", keras_major=2) is None
