"""What a maximum-margin scan returns: each search's largest margin and the input that reached it. Data only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncjax.scan.slots import Slot
from ncjax.search.config import ScanConfig
from ncjax.search.margin import MarginLogs


@dataclass(frozen=True, eq=False)
class LabelMargins:
    """One entry per label: its largest margin over its restarts, and the input that reached it."""

    labels: np.ndarray  # (K,)
    margins: np.ndarray  # (K,) logit of the label minus the largest other logit
    inputs: np.ndarray  # (K, H, W, C) raw pixels in [0, 255]
    chosen_slot: np.ndarray  # (K,) the slot (restart) each came from


@dataclass(frozen=True, eq=False)
class MarginResult:
    """The maximum-margin searches of a scan, in slot order (`labels` holds each slot's label)."""

    labels: np.ndarray  # (L,) int
    margins: np.ndarray  # (L,) the largest margin each search reached
    inputs: np.ndarray  # (L, H, W, C) the inputs that reached them, raw pixels
    epochs: np.ndarray  # (L,) int: epochs run
    logs: MarginLogs  # each (L, max_epochs), NaN after a slot's last epoch
    config: ScanConfig
    wall_time_s: float
    compile_time_s: float
    label_steps: int  # optimizer steps summed over the searches
    slot_steps: int  # steps computed, counting padding lanes
    slots: tuple[Slot, ...]
    compile_count: int = 0
    compile_background_s: float = 0.0
    host_time_s: float = 0.0

    @property
    def restarts(self) -> np.ndarray:
        """(L,) each slot's restart index."""
        return np.asarray([s.restart for s in self.slots], np.int64)

    def per_label(self) -> LabelMargins:
        """Each label's largest margin over its restarts, labels in ascending order."""
        labels = np.unique(self.labels)
        chosen = np.asarray([np.flatnonzero(self.labels == k)[np.argmax(self.margins[self.labels == k])]
                             for k in labels], np.int64)
        return LabelMargins(labels=labels, margins=self.margins[chosen], inputs=self.inputs[chosen],
                            chosen_slot=chosen)
