"""A model's logits for a sample of clean images, in batches through one compiled function: what the pre-flight
check and `--preprocess auto` measure accuracy with."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ncjax.errors import PreflightError

MAX_IMAGES = 512  # the sample measured: enough to tell 10 % from 90 %, cheap next to a scan


def batched_logits(model: Any, *, batch_size: int = 128) -> Callable[[jax.Array], np.ndarray]:
    """A function from images (N, H, W, C) in the model's input scale to their logits, compiled once for all the
    sets it is given; a PreflightError where some are not finite."""
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
