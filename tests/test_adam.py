"""Keras 2.2 Adam: epsilon outside the bias correction."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import optax

from ncjax.search.adam import keras_adam


def test_matches_keras_update_rule():
    opt = keras_adam(0.1, 0.5, 0.9, 1e-7)
    params = jnp.array([1.0, -2.0])
    state = opt.init(params)
    m = v = np.zeros(2)
    p = np.array([1.0, -2.0])
    for t, g in enumerate([np.array([0.3, -1e-6]), np.array([-0.2, 2e-6]), np.array([0.5, 0.0])], start=1):
        updates, state = opt.update(jnp.asarray(g, jnp.float32), state)
        params = optax.apply_updates(params, updates)
        m = 0.5 * m + 0.5 * g
        v = 0.9 * v + 0.1 * g * g
        p = p - 0.1 * math.sqrt(1 - 0.9**t) / (1 - 0.5**t) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(params, p, rtol=1e-5)
    assert int(state.steps) == 3


def test_differs_from_optax_adam_where_sqrt_v_is_tiny():
    g = jnp.array([1e-7])
    ours, _ = keras_adam(0.1, 0.5, 0.9, 1e-7).update(g, keras_adam(0.1, 0.5, 0.9, 1e-7).init(g))
    theirs, _ = optax.adam(0.1, 0.5, 0.9, 1e-7).update(g, optax.adam(0.1, 0.5, 0.9, 1e-7).init(g))
    assert abs(float(ours[0]) - float(theirs[0])) > 1e-3
