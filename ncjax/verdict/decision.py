"""The scan's verdict: the ratio score (default), the gap rule, and the reference's MAD rule.

rule="score": labels whose trigger is at least `min_ratio` times smaller than the median label's are infected, and
a scan whose largest ratio reaches `suspicious_ratio` but not `min_ratio` is suspicious (ncjax.verdict.score; chosen
and checked in experiments/score.md). rule="gap": the reference's MAD-flagged labels whose
norms stand apart from the next label's by `min_gap` (chosen in experiments/verdicts.md).
rule="reference": the MAD test alone (anomaly index > threshold), as the reference decides.
rule="margin": MM-BD's maximum-margin statistic alone (ncjax.verdict.margin); rule="combined": infected when the
score or the margin statistic finds a label, the line saying which evidence fired.
"""
from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ncjax.core.choices import check_choice
from ncjax.errors import ConfigError
from ncjax.verdict.margin import MarginScore
from ncjax.verdict.outlier import GapResult, OutlierResult, gap_outliers, mad_outliers
from ncjax.verdict.pairs import PairScore
from ncjax.verdict.score import DEFAULT_MIN_RATIO, DEFAULT_SUSPICIOUS_RATIO, ScoreResult, ratio_score
from ncjax.verdict.source_check import DEFAULT_MAX_SPREAD, SourceCheck

Rule = Literal["score", "gap", "reference", "margin", "combined"]
Evidence = Literal["trigger", "margin"]
Status = Literal["infected", "suspicious", "clean", "inconclusive"]


@dataclass(frozen=True)
class Verdict:
    status: Status  # "suspicious": under the score rule, ratios between suspicious_ratio and min_ratio; under the
    # gap rule, labels the reference's rule flags that the gap does not keep;
    # "inconclusive": some labels' triggers never reached the attack-success threshold, so norms do not compare
    labels: tuple[int, ...]  # infected: the labels the rule names; suspicious: the labels at suspicious_ratio or
    # above (score rule) or the reference's flagged labels (gap rule);
    # inconclusive: the labels that never reached the threshold
    rule: Rule
    mad: OutlierResult  # the reference's statistics, which its three printed lines report
    gap: GapResult | None  # the gap rule's statistics; None under the other rules
    score: ScoreResult | None = None  # the ratio score; None under the reference's rule
    sources: tuple[SourceCheck, ...] = ()  # the source-specific checks of the score's candidates, where run
    natural: tuple[int, ...] = ()  # candidates set aside: their source-specific triggers differ by class
    max_spread: float = DEFAULT_MAX_SPREAD  # a checked candidate whose source spread exceeds this is set aside
    suspicious_ratio: float = DEFAULT_SUSPICIOUS_RATIO  # the score rule's lower bound for "suspicious"
    pairs: PairScore | None = None  # the pair scan's score, where it ran; its flagged pairs' targets are suspicious
    margin: MarginScore | None = None  # the maximum-margin statistic, under the margin and combined rules
    by_trigger: Verdict | None = None  # under the combined rule, the score rule's own verdict

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """Under the margin and combined rules, what found the labels: the trigger score, the margin, both or none."""
        if self.margin is None:
            return ()
        found: list[Evidence] = []
        if self.by_trigger is not None and self.by_trigger.status == "infected":
            found.append("trigger")
        if self.margin.flagged:
            found.append("margin")
        return tuple(found)

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
        if self.rule in ("margin", "combined"):
            return self._margin_line(named)
        if self.status == "clean" and self.rule != "score":
            return f"clean: no label flagged (anomaly index {index:.2f})"
        if self.status == "inconclusive":
            shown = ", ".join(map(str, self.labels[:10])) + (", ..." if len(self.labels) > 10 else "")
            return (f"INCONCLUSIVE: {len(self.labels)} of {len(self.mad.labels)} labels ({shown}) never reached the "
                    "attack-success threshold, so their triggers are not minimal and the norms cannot be compared. "
                    "Check the preprocessing (--preprocess) and that the model's output depends on its input, or "
                    "scan longer (--preset paper)")
        if self.rule == "reference":
            return f"INFECTED: {named} flagged (anomaly index {index:.2f} > {threshold:g})"
        if self.rule == "score":
            return self._score_line(named, index, threshold, several)
        gap, whose = self.gap, "their trigger norms are" if several else "its trigger norm is"
        assert gap is not None  # the gap rule records its result
        if self.status == "infected":
            return (f"INFECTED: {named} (anomaly index {index:.2f} > {threshold:g}, and {whose} {gap.gap:.2f}x "
                    f"below the next label's, >= {gap.min_gap:g})")
        return (f"SUSPICIOUS: the reference's rule flags {named} (anomaly index {index:.2f} > {threshold:g}), but "
                f"{whose} only {gap.gap:.2f}x below the next label's (< {gap.min_gap:g}), as clean models' often "
                "are: inspect the trigger pictures")

    def _score_line(self, named: str, index: float, threshold: float, several: bool) -> str:
        score = self.score
        assert score is not None  # the score rule records its result
        ratios = dict(zip(score.labels.tolist(), score.ratios.tolist()))
        spreads = {c.label: c.spread for c in self.sources}
        aside = "".join(f"; label {label} set aside: its source-specific triggers differ by class (spread "
                        f"{spreads[label]:.2f} > {self.max_spread:g}), as a natural feature's do"
                        for label in self.natural)
        pair_named = [label for label in self.labels if self.pairs is not None and label in self.pairs.targets]
        if self.status == "infected":
            shown = ", ".join(f"{label}: {ratios[label]:.2f}x" for label in self.labels)
            checked = [f"{label}: {spreads[label]:.2f}" for label in self.labels if label in spreads]
            uniform = f"; source spread {', '.join(checked)}" if checked else ""
            others = [label for label in (self.pairs.targets if self.pairs is not None else ()) if label not in
                      self.labels]
            also = f"; the pair scan also suspects: {self._pair_reasons(others)}" if others else ""
            return (f"INFECTED: {named} (score {score.score:.2f}: trigger norm{'s' if len(self.labels) > 1 else ''} "
                    f"smaller than the median label's by {shown}, >= {score.min_ratio:g}{uniform}; anomaly index "
                    f"{index:.2f}{aside}{also})")
        if self.status == "suspicious":
            if score.score >= self.suspicious_ratio:
                by_score = (f"score {score.score:.2f}: label {score.top_label}'s trigger is {score.score:.2f}x smaller "
                            f"than the median label's, >= {self.suspicious_ratio:g} but < {score.min_ratio:g}; ")
            else:
                by_score = f"the labels' own triggers score {score.score:.2f}, < {self.suspicious_ratio:g}; "
            pairs = f"; {self._pair_reasons(pair_named)}" if pair_named else self._pairs_clear()
            return (f"SUSPICIOUS: {named} ({by_score}anomaly index {index:.2f}{aside}{pairs}): inspect the trigger "
                    "pictures, and scan longer (--preset focused, --restarts 2) or with other seeds")
        flagged = ""
        if self.mad.flagged:
            which = ("labels " if len(self.mad.flagged) > 1 else "label ") + ", ".join(map(str, self.mad.flagged))
            flagged = (f"; the reference's rule flags {which}, but below {self.suspicious_ratio:g}x, as clean models' "
                       "labels often are")
        return (f"clean: score {score.score:.2f} (the smallest trigger, label {score.top_label}'s, is "
                f"{score.score:.2f}x smaller than the median label's, < {self.suspicious_ratio:g}; anomaly index "
                f"{index:.2f}{flagged}{self._pairs_clear()})")

    def _margin_line(self, named: str) -> str:
        margin = self.margin
        assert margin is not None  # these rules record the statistic
        if margin.note:
            clause = f"maximum margin: {margin.note}"
        else:
            beyond = "<" if margin.flagged else ">="
            clause = (f"maximum margin: label {margin.top_label} reaches {margin.largest:.1f}, {margin.ratio:.2f}x the "
                      f"median label's (p {margin.p_text()}, {beyond} {margin.max_p:g})")
        if self.rule == "margin":
            return f"INFECTED: {named} ({clause})" if self.status == "infected" else f"clean: {clause}"
        assert self.by_trigger is not None  # the combined rule keeps the score's own verdict
        own = self.by_trigger.line()
        if self.status == "infected" and "trigger" not in self.evidence:
            return f"INFECTED: {named} by its logit margin ({clause}); the trigger search alone: {own}"
        if "margin" in self.evidence and set(margin.flagged) - set(self.by_trigger.labels):
            return f"{own}; also label {margin.top_label} by its logit margin ({clause})"
        return f"{own}; {clause}"

    def _pairs_clear(self) -> str:
        """What the pair scan found when it names nothing: its largest asymmetry."""
        if self.pairs is None or not np.isfinite(self.pairs.asymmetry).any():
            return ""
        top = self.pairs.top
        return (f"; pair scan: largest asymmetry {top.asymmetry:.2f} (class {top.source} to label {top.target}), < "
                f"{self.pairs.min_asymmetry:g}")

    def _pair_reasons(self, labels: list[int]) -> str:
        """Why the pair scan names `labels`: each one's largest flagged pair."""
        if not labels or self.pairs is None:
            return ""
        first = {f.target: f for f in reversed(self.pairs.flagged)}  # reversed: the largest asymmetry wins
        shown = "; ".join(f"class {first[label].source} reaches label {label} with a trigger "
                          f"{first[label].asymmetry:.2f}x smaller than the way back" for label in labels)
        return (f"source-specific? {shown} (rows and columns accounted for, >= {self.pairs.min_asymmetry:g}; see the "
                "pair pictures)")


def decide(norms, labels=None, *, reached=None, rule: Rule = "score", threshold: float = 2.0,
           min_gap: float = 1.5, min_ratio: float = DEFAULT_MIN_RATIO, sources: Sequence[SourceCheck] = (),
           max_spread: float = DEFAULT_MAX_SPREAD, suspicious_ratio: float = DEFAULT_SUSPICIOUS_RATIO,
           pairs: PairScore | None = None, margin: MarginScore | None = None) -> Verdict:
    """The verdict on a scan's trigger norms (one per label): "infected", "suspicious", "clean" or, when
    `reached` (one bool per label: ScanResult.reached_threshold) says some labels' triggers never reached the
    attack-success threshold, "inconclusive": a label no trigger can reach is not a clean label, and its
    unminimized mask distorts the median, so neither rule can be read. A model whose output ignores its input
    reaches no label but its constant one.

    rule="score" (default): infected when some labels' triggers are at least `min_ratio` times smaller than the
    median label's (ncjax.verdict.score); a largest ratio of at least `suspicious_ratio` (and below min_ratio) makes
    it "suspicious". The MAD test's flags are reported but do not decide: with few labels or a long search they flag
    clean models' labels whose ratio is barely above 1.
    `sources` (ncjax.scan.check_sources of the candidates) sets aside candidates whose source spread exceeds
    `max_spread` (a label that different classes reach through different triggers), except the checked candidate
    with the smallest spread: the check prunes the labels named, it does not overrule the score.
    `pairs` (ncjax.verdict.pair_score of a pair scan) makes a scan the score calls clean suspicious of its flagged
    pairs' targets (and adds them to a suspicious scan's labels): a source-specific backdoor leaves the label's own
    trigger ordinary.
    rule="reference": infected when the MAD test flags any label (anomaly index > threshold below the median).
    rule="gap": infected when, of those labels, the smallest k stand apart from the next label's norm
    by at least `min_gap`; labels flagged by the MAD test alone make the verdict "suspicious".
    rule="margin": infected when `margin` (ncjax.margin_score of a maximum-margin scan) flags its top label.
    rule="combined": the score rule's verdict, made infected (naming the label too) where `margin` flags a label;
    `evidence` says which statistic found the labels.
    """
    check_choice(rule, typing.get_args(Rule), "the verdict rule")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"the anomaly-index threshold must be a finite number > 0, got {threshold!r}.")
    if rule in ("margin", "combined") and not isinstance(margin, MarginScore):
        raise ConfigError(f"the {rule} rule reads the maximum-margin statistic: pass margin=ncjax.margin_score(...) "
                          "of a maximum-margin scan (ncjax.scan_margins).")
    if rule == "combined":
        assert margin is not None
        own = decide(norms, labels, reached=reached, rule="score", threshold=threshold, min_ratio=min_ratio,
                     sources=sources, max_spread=max_spread, suspicious_ratio=suspicious_ratio, pairs=pairs)
        return _with_margin(own, margin)
    mad = mad_outliers(np.asarray(norms), labels, threshold=threshold)
    if rule == "margin":  # the trigger norms are reported, not read
        assert margin is not None
        return Verdict("infected" if margin.flagged else "clean", margin.flagged, rule, mad, None, margin=margin)
    if reached is not None:
        reached = np.asarray(reached, bool)
        if reached.shape != mad.labels.shape:
            raise ConfigError(f"reached has shape {reached.shape}; give one bool per label ({mad.labels.shape}).")
        if not reached.all():
            return Verdict("inconclusive", tuple(int(v) for v in mad.labels[~reached]), rule, mad, None)
    if pairs is not None and rule != "score":
        raise ConfigError(f"pairs are read under the score rule only, not under rule {rule!r}.")
    if rule == "reference":
        return Verdict("infected" if mad.flagged else "clean", mad.flagged, rule, mad, None)
    if rule == "score":
        return _by_score(mad, rule, min_ratio, tuple(sources), max_spread, suspicious_ratio, pairs)
    gap = gap_outliers(mad, min_gap=min_gap)
    if gap.flagged:
        return Verdict("infected", gap.flagged, rule, mad, gap)
    return Verdict("suspicious" if mad.flagged else "clean", mad.flagged, rule, mad, gap)


def _by_score(mad: OutlierResult, rule: Rule, min_ratio: float, sources: tuple[SourceCheck, ...],
              max_spread: float, suspicious_ratio: float, pairs: PairScore | None) -> Verdict:
    if not (isinstance(max_spread, (int, float)) and math.isfinite(max_spread) and max_spread >= 1):
        raise ConfigError(f"max_spread must be a finite number >= 1 (a ratio of norms), got {max_spread!r}.")
    if not (isinstance(suspicious_ratio, (int, float)) and not isinstance(suspicious_ratio, bool)
            and math.isfinite(suspicious_ratio) and suspicious_ratio > 1):
        raise ConfigError(f"suspicious_ratio must be a finite number above 1, got {suspicious_ratio!r}; at min_ratio "
                          "or above, no scan is called suspicious.")
    if not all(isinstance(c, SourceCheck) for c in sources):
        raise ConfigError("sources must be SourceCheck values (from ncjax.scan.check_sources).")
    if pairs is not None and not isinstance(pairs, PairScore):
        raise ConfigError("pairs must be a PairScore (from ncjax.verdict.pair_score).")
    score = ratio_score(mad.norms, mad.labels, min_ratio=min_ratio)
    checked = sorted((c for c in sources if c.label in score.candidates), key=lambda c: c.spread)
    # The check names labels; the score decides. Its spread separates injected from natural triggers too weakly
    # (experiments/score.md: AUC 0.63; the demo's injected 33 spreads 2.26) to overrule the score, so the
    # candidate whose source-specific triggers agree best is never set aside.
    natural = tuple(c.label for c in checked[1:] if c.spread > max_spread)
    kept = tuple(label for label in score.candidates if label not in natural)
    order = np.argsort(-score.ratios, kind="stable")
    doubtful = tuple(int(score.labels[i]) for i in order if suspicious_ratio <= score.ratios[i] < min_ratio)
    if score.note:  # too few labels for a median: nothing to suspect either
        doubtful = ()
    # A flagged pair makes the scan suspicious, not infected: one start per pair, and on the development scans a
    # natural pair of similar classes outranked a weak planted one (experiments/pair_benchmark.md).
    if pairs is not None:
        doubtful += tuple(label for label in pairs.targets if label not in doubtful)
    status: Status = "infected" if kept else "suspicious" if doubtful else "clean"
    return Verdict(status, kept or doubtful, rule, mad, None, score=score, sources=sources, natural=natural,
                   max_spread=max_spread, suspicious_ratio=suspicious_ratio, pairs=pairs)


def _with_margin(own: Verdict, margin: MarginScore) -> Verdict:
    """The combined rule: the score's verdict `own`, and the margin statistic's flagged label beside it."""
    if not margin.flagged:
        return replace(own, rule="combined", margin=margin, by_trigger=own)
    labels = own.labels if own.status == "infected" else ()
    labels += tuple(label for label in margin.flagged if label not in labels)
    return replace(own, status="infected", labels=labels, rule="combined", margin=margin, by_trigger=own)
