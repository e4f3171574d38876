"""The scan's verdict: the reference's MAD rule, and the gap rule that ncjax's measurements support.

experiments/verdicts.md holds the evidence: over 68 scans of real and planted GTSRB models, the reference's rule
(anomaly index > 2) flagged a label on 12 of 31 clean-model scans, and non-target labels beside the targets on
many infected ones; keeping only MAD-flagged labels whose norms stand apart from the next label's by 1.5x
flagged 1 of 31, at the cost of some weak backdoors (27 of 37 infected scans detected against 30; see README,
"Detection quality").
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ncjax.outlier import GapResult, OutlierResult, gap_outliers, mad_outliers
from ncjax.choices import check_choice
from ncjax.errors import ConfigError

Rule = Literal["gap", "reference"]
Status = Literal["infected", "suspicious", "clean", "inconclusive"]


@dataclass(frozen=True)
class Verdict:
    status: Status  # "suspicious": the reference's rule flags labels that the gap rule does not keep;
    # "inconclusive": some labels' triggers never reached the attack-success threshold, so norms do not compare
    labels: tuple[int, ...]  # infected: the labels the rule flags; suspicious: the reference's flagged labels;
    # inconclusive: the labels that never reached the threshold
    rule: Rule
    mad: OutlierResult  # the reference's statistics, which its three printed lines report
    gap: GapResult | None  # None under the reference's rule

    @property
    def infected(self) -> bool:
        return self.status == "infected"

    def headline(self) -> str:
        """The verdict in a few words: 'INFECTED: label 33', 'SUSPICIOUS: labels 2, 14', 'clean'."""
        if self.status == "clean":
            return "clean"
        if self.status == "inconclusive":
            return f"INCONCLUSIVE: {len(self.labels)} label(s) never reached the threshold"
        named = ("labels " if len(self.labels) > 1 else "label ") + ", ".join(map(str, self.labels))
        return f"{self.status.upper()}: {named}"

    def line(self) -> str:
        """One line for people: the verdict and the numbers behind it."""
        index, threshold = self.mad.anomaly_index, self.mad.threshold
        several = len(self.labels) > 1
        named = ("labels " if several else "label ") + ", ".join(map(str, self.labels))
        if self.status == "clean":
            return f"clean: no label flagged (anomaly index {index:.2f})"
        if self.status == "inconclusive":
            shown = ", ".join(map(str, self.labels[:10])) + (", ..." if len(self.labels) > 10 else "")
            return (f"INCONCLUSIVE: {len(self.labels)} of {len(self.mad.labels)} labels ({shown}) never reached the "
                    "attack-success threshold, so their triggers are not minimal and the norms cannot be compared. "
                    "Check the preprocessing (--preprocess) and that the model's output depends on its input, or "
                    "scan longer (--preset paper)")
        if self.rule == "reference":
            return f"INFECTED: {named} flagged (anomaly index {index:.2f} > {threshold:g})"
        gap, whose = self.gap, "their trigger norms are" if several else "its trigger norm is"
        if self.status == "infected":
            return (f"INFECTED: {named} (anomaly index {index:.2f} > {threshold:g}, and {whose} {gap.gap:.2f}x "
                    f"below the next label's, >= {gap.min_gap:g})")
        return (f"SUSPICIOUS: the reference's rule flags {named} (anomaly index {index:.2f} > {threshold:g}), but "
                f"{whose} only {gap.gap:.2f}x below the next label's (< {gap.min_gap:g}), as clean models' often "
                "are: inspect the trigger pictures")


def decide(norms, labels=None, *, reached=None, rule: Rule = "gap", threshold: float = 2.0,
           min_gap: float = 1.5) -> Verdict:
    """The verdict on a scan's trigger norms (one per label): "infected", "suspicious", "clean" or, when
    `reached` (one bool per label: ScanResult.reached_threshold) says some labels' triggers never reached the
    attack-success threshold, "inconclusive": a label no trigger can reach is not a clean label, and its
    unminimized mask distorts the median, so neither rule can be read. A model whose output ignores its input
    reaches no label but its constant one.

    rule="reference": infected when the MAD test flags any label (anomaly index > threshold below the median).
    rule="gap" (default): infected when, of those labels, the smallest k stand apart from the next label's norm
    by at least `min_gap`; labels flagged by the MAD test alone make the verdict "suspicious".
    """
    check_choice(rule, typing.get_args(Rule), "the verdict rule")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"the anomaly-index threshold must be a finite number > 0, got {threshold!r}.")
    mad = mad_outliers(np.asarray(norms), labels, threshold=threshold)
    if reached is not None:
        reached = np.asarray(reached, bool)
        if reached.shape != mad.labels.shape:
            raise ConfigError(f"reached has shape {reached.shape}; give one bool per label ({mad.labels.shape}).")
        if not reached.all():
            return Verdict("inconclusive", tuple(int(v) for v in mad.labels[~reached]), rule, mad, None)
    if rule == "reference":
        return Verdict("infected" if mad.flagged else "clean", mad.flagged, rule, mad, None)
    gap = gap_outliers(mad, min_gap=min_gap)
    if gap.flagged:
        return Verdict("infected", gap.flagged, rule, mad, gap)
    return Verdict("suspicious" if mad.flagged else "clean", mad.flagged, rule, mad, gap)
