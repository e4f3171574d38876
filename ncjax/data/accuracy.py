"""A model's logits for a sample of clean images, in batches through one compiled function: what the pre-flight
check and `--preprocess auto` measure accuracy with."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

MAX_IMAGES = 512  # the sample measured: enough to tell 10 % from 90 %, cheap next to a scan


def batched_logits(model: Any, *, batch_size: int = 128) -> Callable[[jax.Array], np.ndarray]:
    """A function from images (N, H, W, C) in the model's input scale to their logits, compiled once for all the
    sets it is given."""
    predict = jax.jit(lambda batch: model.apply(model.params, batch))
    return lambda x: np.concatenate([np.asarray(predict(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
