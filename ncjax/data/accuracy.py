"""A model's logits for a sample of clean images, in batches through one compiled function: what the pre-flight
check and `--preprocess auto` measure accuracy with."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ncjax.errors import PreflightError

MAX_IMAGES = 512  # the sample measured: enough to tell 10 % from 90 %, cheap next to a scan
MAX_BATCH = 128
# The activations one forward batch may hold: a model with large feature maps gets smaller batches, so checking
# it never needs more memory than its scan does.
FORWARD_BYTES = 1 << 30


def forward_batch(model: Any) -> int:
    """The batch size whose activations (every layer's output, float32) stay within FORWARD_BYTES."""
    per_image = sum(layer.values_per_image for layer in getattr(model, "layers", ()))
    return int(min(MAX_BATCH, max(1, FORWARD_BYTES // max(4 * per_image, 1))))


def batched_logits(model: Any, *, batch_size: int | None = None) -> Callable[[jax.Array], np.ndarray]:
    """A function from images (N, H, W, C) in the model's input scale to their logits, compiled once for all the
    sets it is given (in batches of `batch_size`; default: forward_batch); a PreflightError where some are not
    finite."""
    batch_size = batch_size or forward_batch(model)
    predict = jax.jit(lambda batch: model.apply(model.params, batch))

    def logits(x: jax.Array) -> np.ndarray:
        out = np.concatenate([np.asarray(predict(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
        if not np.isfinite(out).all():  # every gradient of a scan would be NaN: say so now, not after the scan
            bad = int((~np.isfinite(out).all(axis=-1)).sum())
            raise PreflightError(f"the model's outputs for {bad} of {len(out)} images are not finite (NaN or "
                                 "infinite), so no trigger can be searched: its weights or graph compute no usable "
                                 "scores (look at it with `ncjax inspect`).")
        return out

    return logits
