"""Per-sample attack losses on the model's logits.

`reference`: what the reference code computes. It calls Keras' categorical_crossentropy with its arguments
swapped, so the one-hot target, clipped to [1e-7, 1 - 1e-7], takes the place of the prediction:
  ce = -sum_k p_k log(clip(onehot)_k) = -p_t log(1 - 1e-7) - (1 - p_t) log(1e-7)  ~= 16.118 (1 - p_t).
`crossentropy`: the paper's wording, -log p_t, from the logits.
"""
from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

LossName = Literal["reference", "crossentropy"]
KERAS_EPSILON = 1e-7


def attack_loss(logits: jax.Array, target: jax.Array, loss: LossName) -> jax.Array:
    """Per-sample loss (N,) of sending `logits` (N, K) to the label `target` (a scalar int)."""
    if loss == "crossentropy":
        return -jax.nn.log_softmax(logits, axis=-1)[:, target]
    p_target = jax.nn.softmax(logits, axis=-1)[:, target]
    return -(p_target * math.log(1 - KERAS_EPSILON) + (1 - p_target) * math.log(KERAS_EPSILON))


def attack_success(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Per-sample 1.0 where the model's top label is the target."""
    return (jnp.argmax(logits, axis=-1) == target).astype(jnp.float32)
