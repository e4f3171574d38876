"""What a scan returns: per-label triggers and norms, per-epoch logs, and how the scan ran. Data only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncjax.config import ScanConfig


@dataclass(frozen=True)
class EpochLogs:
    """Per-label, per-epoch means, shape (labels, max_epochs); NaN after a label's last epoch."""

    ce: np.ndarray
    reg: np.ndarray
    loss: np.ndarray
    asr: np.ndarray
    reg_best: np.ndarray  # inf until a trigger reached the attack-success threshold
    cost: np.ndarray  # the cost in force during the epoch


@dataclass(frozen=True)
class ScanProgress:
    """Passed to the scan's callback after every epoch of every chunk of labels."""

    epoch: int  # epochs run by the labels now being optimized
    labels_done: int
    labels_total: int
    active_labels: tuple[int, ...]
    elapsed_s: float


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Reverse-engineered triggers of the scanned labels, in the order of `labels`.

    A label whose trigger never reached the attack-success threshold keeps its last mask and pattern, with
    `reached_threshold` False (the reference returns the final trigger then).
    """

    labels: np.ndarray  # (L,) int
    masks: np.ndarray  # (L, H, W) in [0, 1]
    patterns: np.ndarray  # (L, H, W, C) raw pixels in [0, 255]
    l1_norms: np.ndarray  # (L,) sum of each mask: what the MAD stage compares
    attack_success: np.ndarray  # (L,) epoch attack success when the kept trigger was found (last epoch if none)
    reached_threshold: np.ndarray  # (L,) bool
    epochs: np.ndarray  # (L,) int: epochs run
    early_stopped: np.ndarray  # (L,) bool
    final_cost: np.ndarray  # (L,)
    logs: EpochLogs
    config: ScanConfig
    loss: str  # "reference" or "crossentropy"
    wall_time_s: float
    compile_time_s: float
    label_steps: int  # optimizer steps summed over the scanned labels (work a plain loop would do)
    slot_steps: int  # steps computed, counting frozen and padding slots of the vmapped label axis

    def label_index(self, label: int) -> int:
        """Position of `label` in this result's arrays."""
        matches = np.flatnonzero(self.labels == label)
        if not matches.size:
            raise KeyError(f"label {label} was not scanned; scanned labels: {self.labels.tolist()}")
        return int(matches[0])
