"""Restarts: several independent searches per label, reduced to the label's smallest trigger.

One search can settle on a large trigger when a smaller one exists (the mask's start decides which basin it
falls into); an injected trigger is the smallest, so a search that misses it hides the backdoor. R restarts
per label run side by side in the same vmapped step (ncjax.scan.slots.restart_slots); per label the smallest trigger
that reached the attack-success threshold is kept, and the spread across restarts is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncjax.errors import ScanInputError
from ncjax.scan.result import ScanResult


@dataclass(frozen=True, eq=False)
class LabelTriggers:
    """Per scanned label, in order of first appearance: its best trigger over the restarts.

    A restart that reached the threshold always beats one that did not; among those that did, the smallest
    L1 norm wins; where none did, the smallest norm is kept and `reached_threshold` is False.
    """

    labels: np.ndarray  # (L,)
    masks: np.ndarray  # (L, H, W)
    patterns: np.ndarray  # (L, H, W, C)
    l1_norms: np.ndarray  # (L,) the kept trigger's norm
    reached_threshold: np.ndarray  # (L,) bool: some restart reached the attack-success threshold
    attack_success: np.ndarray  # (L,)
    chosen_restart: np.ndarray  # (L,) int: the restart index kept
    chosen_slot: np.ndarray  # (L,) int: the kept slot's position in the scan (ScanResult.select takes these)
    restart_norms: np.ndarray  # (L, R) every restart's norm (NaN where it did not reach the threshold)

    @property
    def restarts(self) -> int:
        return int(self.restart_norms.shape[1])

    @property
    def spread(self) -> np.ndarray:
        """(L,) largest over smallest norm among the restarts that reached the threshold (1 with one restart,
        NaN with none): how much one search's answer depends on its start."""
        norms = self.restart_norms
        found = ~np.isnan(norms)
        low = np.where(found, norms, np.inf).min(1)
        high = np.where(found, norms, -np.inf).max(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(found.any(1) & (low > 0), high / np.where(low > 0, low, 1), np.nan)


def best_over_restarts(result: ScanResult) -> LabelTriggers:
    """Reduce a scan of label slots (any number of restarts each, same count per label) to one trigger per
    label. Source-specific slots are refused: their triggers answer another question (ncjax.scan.sources)."""
    if (result.sources >= 0).any():
        raise ScanInputError("best_over_restarts takes a scan of label slots; this one has source-class slots.")
    labels = list(dict.fromkeys(int(v) for v in result.labels))
    restarts = sorted({int(r) for r in result.restarts})
    grid = np.full((len(labels), len(restarts)), -1)
    for i, (label, restart) in enumerate(zip(result.labels, result.restarts)):
        grid[labels.index(int(label)), restarts.index(int(restart))] = i
    if (grid < 0).any():
        raise ScanInputError(f"every label needs the same restarts {restarts}; some are missing.")
    norms = np.asarray(result.l1_norms, np.float64)[grid]
    reached = np.asarray(result.reached_threshold, bool)[grid]
    # Reached first, then the smaller norm: a failed search's mask is not a minimal trigger.
    pick = np.where(reached.any(1), np.argmin(np.where(reached, norms, np.inf), 1), np.argmin(norms, 1))
    chosen = grid[np.arange(len(labels)), pick]
    return LabelTriggers(
        labels=np.asarray(labels), masks=np.asarray(result.masks)[chosen], patterns=np.asarray(result.patterns)[chosen],
        l1_norms=norms[np.arange(len(labels)), pick], reached_threshold=reached.any(1),
        attack_success=np.asarray(result.attack_success)[chosen], chosen_restart=np.asarray(restarts)[pick],
        chosen_slot=chosen,
        restart_norms=np.where(reached, norms, np.nan),
    )
