"""Adam as Keras 2.2 computes it, as an optax GradientTransformation.

Keras folds the bias corrections into the step size and adds epsilon to the uncorrected sqrt(v):
  lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);  update = -lr_t * m_t / (sqrt(v_t) + eps)
optax.adam adds epsilon after the correction instead; the two differ while sqrt(v) is near eps.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class KerasAdamState(NamedTuple):
    steps: jax.Array  # () int32: steps taken
    mu: optax.Params  # first moments, like the params
    nu: optax.Params  # second moments, like the params


def keras_adam(learning_rate: float | optax.Schedule, b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """Keras 2.2's Adam; `learning_rate` may be a schedule of the step count (Keras' `decay` is one)."""

    def init_fn(params: optax.Params) -> KerasAdamState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return KerasAdamState(jnp.zeros((), jnp.int32), zeros, zeros)

    def update_fn(grads, state: KerasAdamState, params=None):
        del params
        steps = state.steps + 1
        t = steps.astype(jnp.float32)
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, grads)
        lr = learning_rate(state.steps) if callable(learning_rate) else learning_rate
        lr_t = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        updates = jax.tree_util.tree_map(lambda m, v: -lr_t * m / (jnp.sqrt(v) + eps), mu, nu)
        return updates, KerasAdamState(steps, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)
