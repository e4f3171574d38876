"""What a scan returns: per-slot triggers and norms, per-epoch logs, and how the scan ran. Data only.

In a scan of every label (one slot per label) "slot" and "label" are the same thing; the arrays are in slot order.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncjax.scan.slots import Slot
from ncjax.search.config import ScanConfig
from ncjax.search.schedule import EpochLogs


@dataclass(frozen=True)
class ScanProgress:
    """Passed to the scan's callback after every epoch of every chunk of slots."""

    epoch: int  # epochs run by the slots now being optimized
    labels_done: int  # slots finished (labels, in a scan of every label)
    labels_total: int  # slots in the scan
    active_labels: tuple[int, ...]  # the target labels of the slots still searching
    elapsed_s: float


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Reverse-engineered triggers of the scanned slots, in their order (`labels` holds their targets).

    A label whose trigger never reached the attack-success threshold keeps its last mask and pattern, with
    `reached_threshold` False (the reference returns the final trigger then).
    """

    labels: np.ndarray  # (L,) int: each slot's target label
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
    slot_steps: int  # steps computed, counting frozen and padding lanes of the vmapped slot axis
    slots: tuple[Slot, ...]  # the searches, in the order of the arrays
    # Executables this scan compiled or loaded from the persistent compile cache (one per width and kind).
    compile_count: int = 0
    # Compile seconds spent in background threads, ahead of need (ScanConfig.precompile_widths); compile_time_s
    # counts only the time the scan waited for the compiler.
    compile_background_s: float = 0.0
    # Seconds of the host's own work between epochs (recording, harvesting, compacting, checkpointing, the
    # callback), while the device waits for the next epoch's steps.
    host_time_s: float = 0.0

    @property
    def sources(self) -> np.ndarray:
        """(L,) each slot's source class, -1 where it drew from every clean image."""
        return np.asarray([-1 if s.source is None else s.source for s in self.slots], np.int64)

    @property
    def restarts(self) -> np.ndarray:
        """(L,) each slot's restart index."""
        return np.asarray([s.restart for s in self.slots], np.int64)

    def select(self, indices) -> ScanResult:
        """The same scan restricted to the slots at `indices` (e.g. each label's best restart); timings and
        step counts stay those of the whole scan."""
        index = np.asarray(indices, np.int64)
        per_slot = ("labels", "masks", "patterns", "l1_norms", "attack_success", "reached_threshold", "epochs",
                    "early_stopped", "final_cost")
        changes: dict[str, Any] = {name: np.asarray(getattr(self, name))[index] for name in per_slot}
        return dataclasses.replace(self, **changes, logs=EpochLogs(*(np.asarray(v)[index] for v in self.logs)),
                                   slots=tuple(self.slots[int(i)] for i in index))

    def label_index(self, label: int) -> int:
        """Position of `label` in this result's arrays (its first slot, where restarts repeat it)."""
        matches = np.flatnonzero(self.labels == label)
        if not matches.size:
            raise KeyError(f"label {label} was not scanned; scanned labels: {self.labels.tolist()}")
        return int(matches[0])
