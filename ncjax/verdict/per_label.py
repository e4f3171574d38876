"""One value per label, checked where a statistic reads it: the trigger norms and the margins."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ncjax.errors import ConfigError


class PerLabel(NamedTuple):
    values: np.ndarray  # (K,) float64, finite
    labels: np.ndarray  # (K,) the label of each value (0 .. K-1 when none were given)


def per_label(values, labels=None, *, what: str, nonnegative: bool = False) -> PerLabel:
    """`values` as a non-empty 1-D float64 array of finite numbers (>= 0 where `nonnegative`) with one label each;
    a ConfigError naming `what` otherwise."""
    values = np.asarray(values, np.float64)
    if (values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values))
            or (nonnegative and (values < 0).any())):
        raise ConfigError(f"{what} must be a non-empty 1-D array of finite numbers{' >= 0' if nonnegative else ''}, "
                          f"got shape {values.shape}.")
    labels = np.arange(len(values)) if labels is None else np.asarray(labels)
    if labels.shape != values.shape:
        raise ConfigError(f"labels {labels.shape} and {what} {values.shape} differ in length.")
    return PerLabel(values, labels)
