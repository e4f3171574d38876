"""The reference's GTSRB network in flax, for training planted models: the one module that imports flax."""
from __future__ import annotations

import flax.linen as nn
import jax

from ncjax.lab.inject import REFERENCE_LAYERS, keras_name


class ReferenceNet(nn.Module):
    """The reference's GTSRB network; Dropout is active when `train` is True."""

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        convs = denses = 0
        for layer in REFERENCE_LAYERS:
            kind = layer[0]
            if kind == "conv":
                x = nn.relu(nn.Conv(layer[1], (3, 3), padding=layer[2].upper(), name=keras_name("conv2d", convs))(x))
                convs += 1
            elif kind == "pool":
                x = nn.max_pool(x, (2, 2), (2, 2))
            elif kind == "dropout":
                x = nn.Dropout(layer[1], deterministic=not train)(x)
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1)
            else:
                units = layer[1] or self.num_classes
                x = nn.Dense(units, name=keras_name("dense", denses))(x)
                denses += 1
                x = nn.relu(x) if layer[1] else x  # logits out; the Keras file says softmax
        return x
