"""scan_margins: MM-BD's maximum-margin search for every label, run by the scan engine."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.errors import ConfigError
from ncjax.scan.engine import Callback, run_searches
from ncjax.scan.inputs import check_labels, check_model
from ncjax.scan.margin_result import MarginResult
from ncjax.scan.slots import restart_slots
from ncjax.search.config import ScanConfig


def scan_margins(
    model: Any,
    images: Any = None,
    *,
    labels: Sequence[int] | None = None,
    config: ScanConfig | None = None,
    key: jax.Array,
    callback: Callback | None = None,
    devices: Sequence[jax.Device] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> MarginResult:
    """The largest logit margin every label (or each of `labels`) of `model` can reach over the others, each
    maximized over the input itself from config.restarts random images (MM-BD; ncjax.search.margin).

    Args:
      model: as in `scan_all_labels`.
      images: clean images in the model's input scale; optional (the search does not use them; given, they are
        checked as a trigger scan checks them).
      config: ScanConfig.margin() by default; its `search` must be "margin".
      labels, key, callback, devices, checkpoint, resume: as in `scan_all_labels`.

    Returns:
      A MarginResult, one slot per label and restart; `per_label()` keeps each label's largest margin, and
      `ncjax.margin_score` reads them.
    """
    config = ScanConfig.margin() if config is None else config
    if not isinstance(config, ScanConfig) or config.search != "margin":
        raise ConfigError("scan_margins needs a ScanConfig with search='margin', e.g. ScanConfig.margin(); got "
                          f"{getattr(config, 'search', config)!r}.")
    image_shape = check_model(model)
    if images is None:  # mid-grey stand-ins: one batch, never read by the search
        images = config.preprocessing.to_model(jnp.full((config.batch_size, *image_shape), 127.5, jnp.float32))
    slots = restart_slots(check_labels(labels, int(model.num_classes)), config.restarts)
    result = run_searches(model, np.asarray(images), slots, config=config, key=key, callback=callback,
                          devices=devices, checkpoint=checkpoint, resume=resume)
    assert isinstance(result, MarginResult)  # a margin search's outputs
    return result
