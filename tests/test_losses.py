"""The reference's swapped-argument loss and plain cross-entropy."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.search.losses import attack_loss, attack_success


def test_reference_loss_is_16_118_times_one_minus_p():
    logits = jnp.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    p = jax.nn.softmax(logits)[:, 1]
    expected = -(p * math.log(1 - 1e-7) + (1 - p) * math.log(1e-7))
    np.testing.assert_allclose(attack_loss(logits, jnp.asarray(1), "reference"), expected, rtol=1e-6)
    np.testing.assert_allclose(attack_loss(logits, jnp.asarray(1), "reference"), 16.118 * (1 - p), rtol=1e-4)


def test_crossentropy_is_minus_log_p():
    logits = jnp.array([[2.0, 0.5, -1.0]])
    np.testing.assert_allclose(attack_loss(logits, jnp.asarray(2), "crossentropy"),
                               -jnp.log(jax.nn.softmax(logits)[:, 2]), rtol=1e-6)


def test_attack_success_is_argmax():
    logits = jnp.array([[0.0, 1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(attack_success(logits, jnp.asarray(1)), [1.0, 0.0])


def test_unknown_loss_and_regularizer_are_refused_not_defaulted():
    import pytest

    import ncjax
    from ncjax.search.step import regularizer

    with pytest.raises(ncjax.ConfigError, match="loss must be one of 'reference', 'crossentropy'; got 'mse'"):
        attack_loss(jnp.zeros((1, 3)), jnp.asarray(0), "mse")  # type: ignore[arg-type]  # a wrong type, on purpose
    with pytest.raises(ncjax.ConfigError, match="regularization must be one of 'l1', 'l2'; got 'linf'"):
        regularizer(jnp.ones((2, 2)), "linf")  # type: ignore[arg-type]  # a wrong type, on purpose
    assert float(regularizer(jnp.ones((2, 2)), "l2")) == 2.0 and float(regularizer(jnp.ones((2, 2)), "l1")) == 4.0
