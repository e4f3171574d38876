"""Per-sample attack losses on the model's logits.

`reference`: what the reference code computes. It calls Keras' categorical_crossentropy with its arguments
swapped, so the one-hot target, clipped to [1e-7, 1 - 1e-7], takes the place of the prediction:
  ce = -sum_k p_k log(clip(onehot)_k) = -p_t log(1 - 1e-7) - (1 - p_t) log(1e-7)  ~= 16.118 (1 - p_t).
`crossentropy`: the paper's wording, -log p_t, from the logits.
"""
from __future__ import annotations

import math
import typing
from typing import Literal

import jax
import jax.numpy as jnp

from ncjax.core.choices import check_choice

LossName = Literal["reference", "crossentropy"]
KERAS_EPSILON = 1e-7


def reference_loss(logits: jax.Array, target: jax.Array) -> jax.Array:
    """The reference code's swapped-argument Keras cross-entropy, ~16.118 (1 - p_target), per sample."""
    p_target = jax.nn.softmax(logits, axis=-1)[:, target]
    return -(p_target * math.log(1 - KERAS_EPSILON) + (1 - p_target) * math.log(KERAS_EPSILON))


def crossentropy_loss(logits: jax.Array, target: jax.Array) -> jax.Array:
    """-log p_target per sample, from the logits."""
    return -jax.nn.log_softmax(logits, axis=-1)[:, target]


LOSSES = {"reference": reference_loss, "crossentropy": crossentropy_loss}


def attack_loss(logits: jax.Array, target: jax.Array, loss: LossName) -> jax.Array:
    """Per-sample loss (N,) of sending `logits` (N, K) to the label `target` (a scalar int)."""
    check_choice(loss, typing.get_args(LossName), "loss")
    return LOSSES[loss](logits, target)


def attack_success(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Per-sample 1.0 where the model's top label is the target."""
    return (jnp.argmax(logits, axis=-1) == target).astype(jnp.float32)
