"""Keras activation functions by name, as each Keras version defines them."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]


def _hard_sigmoid_keras2(x: jax.Array) -> jax.Array:
    # Keras 2 (standalone and tf.keras): piecewise linear 0.2·x + 0.5, clipped to [0, 1].
    return jnp.clip(0.2 * x + 0.5, 0.0, 1.0)


def _hard_sigmoid_keras3(x: jax.Array) -> jax.Array:
    # Keras 3 changed the definition to relu6(x + 3) / 6.
    return jnp.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _softmax(x: jax.Array) -> jax.Array:
    return jax.nn.softmax(x, axis=-1)


_COMMON: dict[str, Activation] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softmax": _softmax,
    "log_softmax": lambda x: jax.nn.log_softmax(x, axis=-1),
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "swish": jax.nn.silu,
    "silu": jax.nn.silu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "exponential": jnp.exp,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
}

SUPPORTED_ACTIVATIONS: tuple[str, ...] = tuple(sorted([*_COMMON, "hard_sigmoid", "hard_silu", "hard_swish"]))


def activation_name(value: Any) -> str | None:
    """The activation's name from a config value: a string, or Keras 3's serialized function dict."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("class_name") == "function" and isinstance(value.get("config"), str):
        return value["config"]
    return None


def get_activation(name: str, *, keras_major: int) -> Activation | None:
    """The activation function called `name` in Keras `keras_major`, or None if ncjax has none."""
    if name in _COMMON:
        return _COMMON[name]
    hard_sigmoid = _hard_sigmoid_keras3 if keras_major >= 3 else _hard_sigmoid_keras2
    if name == "hard_sigmoid":
        return hard_sigmoid
    if name in ("hard_silu", "hard_swish"):
        return lambda x: x * _hard_sigmoid_keras3(x)
    return None
