"""`scan_model`: one model scanned from clean images to a verdict, the way `python -m ncjax.run` does it.

The steps: the pre-flight check (does the model see the images as set?), every label's trigger search (with its
restarts), each label's best restart, the verdict on their norms, the source-specific check of the verdict's
candidates and the verdict again, and, given an output folder, the files (trigger pictures, summary.png,
report.json, triggers.npz) with checkpoints there so an interrupted scan resumes. The command line and the audit
both call it; what it finds comes back as data, and what happens on the way goes to a callback.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np

from ncjax.core.checks import check_flag, check_number, check_whole
from ncjax.core.choices import check_literal_fields
from ncjax.core.printable import printable, quoted
from ncjax.data.preflight import Preflight, run_preflight
from ncjax.errors import PreflightError, UsageError, WorkLimitError
from ncjax.pipeline.out_folder import claim_out, prepare_out
from ncjax.pipeline.out_lock import hold_out
from ncjax.pipeline.pictures import save_pair_pictures, save_trigger_pictures
from ncjax.pipeline.report import build_report, inputs_digest, write_json_atomic
from ncjax.pipeline.summary import save_summary
from ncjax.pipeline.triggers import TRIGGERS_FILE, TriggerSet
from ncjax.scan.engine import scan_all_labels
from ncjax.scan.focus import FocusSummary, summarize_focus
from ncjax.scan.margin_result import LabelMargins
from ncjax.scan.margins import scan_margins
from ncjax.scan.pairs import PAIR_SCAN_LIMIT, PairNorms, pair_classes, scan_pairs
from ncjax.scan.restarts import LabelTriggers, best_over_restarts
from ncjax.scan.result import ScanProgress, ScanResult
from ncjax.scan.sources import check_candidates
from ncjax.scan.work import DEFAULT_MAX_HOURS, WorkEstimate, estimate_work, measured
from ncjax.search.config import ScanConfig, setting
from ncjax.verdict.decision import Rule, Verdict, decide
from ncjax.verdict.margin import DEFAULT_MAX_P, MarginScore, margin_score
from ncjax.verdict.outlier import l1_norms
from ncjax.verdict.pairs import DEFAULT_MIN_ASYMMETRY, PairScore, pair_score
from ncjax.verdict.score import DEFAULT_MIN_RATIO, DEFAULT_SUSPICIOUS_RATIO
from ncjax.verdict.source_check import CHECKED_CANDIDATES, DEFAULT_MAX_SPREAD, SourceCheck

STATE_FILE = "scan_state.npz"
SOURCE_STATE_FILE = "source_check_state.npz"
PAIR_STATE_FILE = "pair_scan_state.npz"
MARGIN_STATE_FILE = "margin_scan_state.npz"
Stage = Literal["preflight", "scan", "source-check", "pairs", "margins"]
PairMode = Literal["auto", "on", "off"]


@dataclass(frozen=True, kw_only=True)
class DecisionConfig:
    """How the norms become a verdict: the rule, its thresholds, and the source-specific check."""

    rule: Rule = setting("score", help="score: labels whose trigger is min_ratio times smaller than the median "
                                       "label's (measured in experiments/score.md); gap: MAD-flagged labels standing "
                                       "apart from the next label's norm by min_gap; reference: the MAD rule alone; "
                                       "margin: MM-BD's maximum-margin statistic alone (a second search, every label's "
                                       "largest logit margin); combined: the score or the margin statistic "
                                       "(experiments/attack_benchmark.md)")
    max_p: float = setting(DEFAULT_MAX_P, help="under the margin and combined rules, the p-value below which the "
                                               "largest margin flags its label, in (0, 1)")
    threshold: float = setting(2.0, help="anomaly-index threshold of the reference's MAD rule, finite and > 0")
    min_ratio: float = setting(DEFAULT_MIN_RATIO, help="median norm over a label's norm for the score rule, > 1")
    suspicious_ratio: float = setting(
        DEFAULT_SUSPICIOUS_RATIO, help="under the score rule, a largest ratio from this up to min_ratio makes the scan "
                                       "suspicious, > 1 (at min_ratio or above: never)")
    min_gap: float = setting(1.5, help="norm ratio for the gap rule, >= 1")
    source_check: int = setting(8, help=f"for the score's candidates (up to {CHECKED_CANDIDATES}), invert one trigger "
                                        "from each of this many other classes and set aside a candidate those "
                                        "triggers do not share (0: off)")
    max_spread: float = setting(DEFAULT_MAX_SPREAD, help="the source spread above which a candidate is set aside")
    pairs: PairMode = setting("off", help=f"the pair scan, a trigger for every (source, target) pair of classes, "
                                          f"which looks for source-specific backdoors: auto: when the clean images are "
                                          f"labelled and hold at most {PAIR_SCAN_LIMIT} classes; on: always (an "
                                          "error without labels or beyond that); off: never (the default: on the "
                                          "pair benchmark it called clean models suspicious too often, "
                                          "experiments/pair_benchmark.md)")
    min_asymmetry: float = setting(DEFAULT_MIN_ASYMMETRY, help="a pair whose trigger is this many times smaller than "
                                                               "its reverse pair's, rows and columns accounted for, "
                                                               "flags its target, > 1")
    quantize: bool = setting(True, help="compare the norms of the 8-bit mask PNGs, as the reference's MAD script "
                                        "reads them (False: exact norms)")

    def __post_init__(self) -> None:
        check_literal_fields(self)
        check_number(self, "threshold", low=0, low_open=True)
        check_number(self, "min_ratio", low=1, low_open=True)
        check_number(self, "suspicious_ratio", low=1, low_open=True)
        check_number(self, "min_asymmetry", low=1, low_open=True)
        check_number(self, "max_p", low=0, high=1, low_open=True, high_open=True)
        for name in ("min_gap", "max_spread"):
            check_number(self, name, low=1)
        check_whole(self, "source_check", low=0)
        check_flag(self, "quantize")


@dataclass(frozen=True)
class PipelineEvent:
    """What `scan_model` tells its callback: a finished pre-flight check, a stage starting (`progress` None), an
    epoch of a stage done, a focused scan's focus once its search ends, or the source check skipped (`skipped`
    says why)."""

    stage: Stage
    preflight: Preflight | None = None
    progress: ScanProgress | None = None
    focus: FocusSummary | None = None
    candidates: tuple[int, ...] = ()  # the labels the source check examines
    sources_per_label: int = 0
    pairs: PairNorms | None = None  # the pair scan's norms, once it ends
    pair_classes: int = 0  # the classes the pair scan pairs, when it starts
    margin: MarginScore | None = None  # the maximum-margin statistic, once its search ends
    work: WorkEstimate | None = None  # the label search's estimated cost, with the pre-flight's event
    skipped: str | None = None


@dataclass(frozen=True)
class ScanOutcome:
    """What `scan_model` found: the pre-flight check, one trigger per label (its best restart), the verdict, the
    report (report.json's content, written too when an output folder was given), and in a focused search how
    it spent its epochs."""

    preflight: Preflight
    result: ScanResult
    restarts: LabelTriggers
    verdict: Verdict
    report: dict[str, Any]
    focus: FocusSummary | None = None
    pairs: PairNorms | None = None  # the pair scan's norms, where it ran (the verdict holds their score)
    margins: LabelMargins | None = None  # each label's largest margin, where the rule read them (the verdict holds
    # their statistic)


def scan_model(model, images: np.ndarray, labels: np.ndarray | None = None, *, key: jax.Array, config: ScanConfig,
               decision: DecisionConfig = DecisionConfig(), scan_labels: Sequence[int] | None = None,
               from_pixels: bool = False, force: bool = False, out: str | os.PathLike | None = None,
               resume: bool = False, overwrite: bool = False, prefix: str = "gtsrb", model_name: str = "",
               data_name: str = "", run: Mapping[str, Any] | None = None,
               callback: Callable[[PipelineEvent], None] | None = None,
               max_hours: float = DEFAULT_MAX_HOURS) -> ScanOutcome:
    """Scan `model` on clean `images` (in its input scale; `labels` where known) and decide.

    Args:
      scan_labels: the labels to search (default: all).
      from_pixels: the images were read as raw pixels (image files, uint8 arrays) and put through
        config.preprocessing, which the pre-flight check takes into account.
      force: scan even when the pre-flight check finds the model does not see the images as set (else a
        PreflightError says which setting to use), or when the scan's estimated cost is beyond `max_hours` or the
        device's memory (else a WorkLimitError says what to lower).
      out: a folder for the outputs and the checkpoints; with `resume`, an interrupted scan's checkpoints there
        are continued; with `overwrite`, an earlier scan's files there are removed first; with neither, a folder
        holding a scan's files is refused (UsageError). None: nothing is written.
      run: how the scan was asked for (seed, preset, command line, file digests: `run_record`), kept in
        report.json's "run" beside the digest of the images as scanned.
      callback: called with a PipelineEvent after the pre-flight check, at each stage's start and after each
        epoch; raising from it (KeyboardInterrupt) stops the scan after its checkpoint.
      max_hours: the longest the label search may be estimated to take (ncjax.scan.work), checked from the
        model's shapes before the pre-flight and again at the rate the pre-flight measures.
    """
    if not (isinstance(max_hours, (int, float)) and not isinstance(max_hours, bool) and 0 < max_hours < float("inf")):
        raise UsageError(f"max_hours must be a positive number of hours, got {max_hours!r}.")
    notify = callback or (lambda event: None)
    folder = None if out is None else prepare_out(out)
    with nullcontext() if folder is None else hold_out(folder):
        if folder is not None:
            claim_out(folder, resume=resume, overwrite=overwrite)
        return _scan_and_decide(model, images, labels, key=key, config=config, decision=decision,
                                scan_labels=scan_labels, from_pixels=from_pixels, force=force, folder=folder,
                                resume=resume, prefix=prefix, model_name=model_name, data_name=data_name, run=run,
                                notify=notify, max_hours=max_hours)


def _scan_and_decide(model, images, labels, *, key, config: ScanConfig, decision: DecisionConfig, scan_labels,
                     from_pixels: bool, force: bool, folder: Path | None, resume: bool, prefix: str, model_name: str,
                     data_name: str, run, notify, max_hours: float) -> ScanOutcome:
    """scan_model's stages once its folder is held: pre-flight, scans, verdict, report, files."""
    searches = (model.num_classes if scan_labels is None else len(scan_labels)) * config.restarts
    work = _within_limits(estimate_work(model, config=config, searches=searches), max_hours, force)
    check = run_preflight(model, images, labels, preprocessing=config.preprocessing, from_pixels=from_pixels)
    problem = check.problem()
    if not (problem and not force) and work.worth_measuring(max_hours):  # no compile for a scan refused anyway
        work = measured(work, model, images)
    notify(PipelineEvent("preflight", preflight=check, work=work))  # what the check found, before any refusal
    if problem and not force:
        raise PreflightError(f"pre-flight: {problem}. (--force scans anyway.)")
    _within_limits(work, max_hours, force)
    pair_plan = planned_pair_classes(labels, decision)  # before any scanning: a pair scan that cannot run costs none
    notify(PipelineEvent("scan"))
    raw = scan_all_labels(model, images, labels=None if scan_labels is None else list(scan_labels), config=config,
                          key=key, callback=lambda progress: notify(PipelineEvent("scan", progress=progress)),
                          checkpoint=None if folder is None else folder / STATE_FILE, resume=resume)
    best = best_over_restarts(raw)
    result = raw.select(best.chosen_slot)  # one trigger per label: its smallest over the restarts
    focus = summarize_focus(raw)
    norms = l1_norms(result.masks, quantize=decision.quantize)
    if focus is not None:  # frozen labels' norms, scaled to what the whole budget would have left of them
        norms = focus.scaled_norms(result.labels, norms)
        notify(PipelineEvent("scan", focus=focus))
    settings: dict[str, Any] = dict(reached=result.reached_threshold, rule=decision.rule, threshold=decision.threshold,
                    min_gap=decision.min_gap, min_ratio=decision.min_ratio, max_spread=decision.max_spread,
                    suspicious_ratio=decision.suspicious_ratio)
    margins = _scan_margins(model, images, scan_labels, key=key, config=config, decision=decision, folder=folder,
                            resume=resume, notify=notify)
    if margins is not None:
        settings["margin"] = margin_score(margins.margins, margins.labels, max_p=decision.max_p)
        notify(PipelineEvent("margins", margin=settings["margin"]))
    verdict = decide(norms, result.labels, **settings)
    sources = _check_sources(model, images, labels, verdict, key=key, config=config, decision=decision,
                             folder=folder, resume=resume, notify=notify)
    pairs = None
    if pair_plan and verdict.status != "inconclusive":  # an inconclusive verdict reads no pairs
        pairs = _scan_pairs(model, images, labels, pair_plan, key=key, config=config, decision=decision,
                            folder=folder, resume=resume, notify=notify)
    scored = None if pairs is None else pair_score(pairs.norms, pairs.classes, min_asymmetry=decision.min_asymmetry)
    if sources or scored is not None:
        verdict = decide(norms, result.labels, sources=sources, pairs=scored, **settings)
    report = build_report(result, verdict, model=model_name, data=data_name,
                          extra={"quantized_norms": decision.quantize, "preflight": check.as_dict(),
                                 "restarts": _restarts_report(best),
                                 "focus": None if focus is None else focus.as_dict(),
                                 "pairs": _pairs_report(pairs, scored),
                                 "margins": _margins_report(margins, verdict.margin),
                                 "work": work.as_dict(),
                                 "run": {**(run or {}), **inputs_digest(images, labels)}})
    if folder is not None:
        _write_outputs(folder, result, verdict, report, prefix=prefix, model_name=model_name,
                       preprocessing=config.preprocessing,
                       frozen=() if focus is None else focus.labels_with("frozen"), pairs=pairs)
    return ScanOutcome(check, result, best, verdict, report, focus, pairs, margins)


def _within_limits(work: WorkEstimate, max_hours: float, force: bool) -> WorkEstimate:
    """`work`, unless its time or memory is beyond the limits and the scan is not forced."""
    problem = work.problem(max_hours)
    if problem and not force:
        raise WorkLimitError(f"{problem}. (--force scans anyway.)")
    return work


def _scan_margins(model, images, scan_labels, *, key, config: ScanConfig, decision: DecisionConfig,
                  folder: Path | None, resume: bool, notify) -> LabelMargins | None:
    """Every label's largest margin (MM-BD), when the rule reads it."""
    if decision.rule not in ("margin", "combined"):
        return None
    notify(PipelineEvent("margins"))
    found = scan_margins(model, images, labels=None if scan_labels is None else list(scan_labels),
                         config=config.margin_search(), key=key,
                         callback=lambda progress: notify(PipelineEvent("margins", progress=progress)),
                         checkpoint=None if folder is None else folder / MARGIN_STATE_FILE, resume=resume)
    return found.per_label()


def _margins_report(margins: LabelMargins | None, score: MarginScore | None) -> dict | None:
    if margins is None or score is None:
        return None
    return {"labels": margins.labels.tolist(), "margins": [float(v) for v in margins.margins],
            "top_label": score.top_label, "largest": score.largest, "median": score.median, "ratio": score.ratio,
            "p_value": score.p_value, "max_p": score.max_p, "flagged": list(score.flagged), "note": score.note}


def _check_sources(model, images, labels, verdict: Verdict, *, key, config: ScanConfig, decision: DecisionConfig,
                   folder: Path | None, resume: bool, notify) -> tuple[SourceCheck, ...]:
    """The source-specific check of the score's largest candidates, when it can run and is asked for."""
    if verdict.score is None or not verdict.score.candidates or decision.source_check == 0:
        return ()
    if labels is None:
        notify(PipelineEvent("source-check", skipped="the clean images carry no labels"))
        return ()
    candidates = tuple(verdict.score.candidates[:CHECKED_CANDIDATES])
    notify(PipelineEvent("source-check", candidates=candidates, sources_per_label=decision.source_check))
    return check_candidates(model, images, labels, verdict.score, config=config, key=key,
                            sources_per_label=decision.source_check, quantize=decision.quantize,
                            callback=lambda progress: notify(PipelineEvent("source-check", progress=progress)),
                            checkpoint=None if folder is None else folder / SOURCE_STATE_FILE, resume=resume)


def planned_pair_classes(labels, decision: DecisionConfig) -> tuple[int, ...]:
    """The classes the pair scan will pair (empty: no pair scan): under the score rule, when asked for (on) or
    when it fits (auto: labelled images of 3 to PAIR_SCAN_LIMIT classes). Checked before any scanning, so a pair
    scan that cannot run costs no label scan."""
    if decision.pairs == "off" or decision.rule != "score":
        return ()
    classes = None if labels is None else pair_classes(labels)
    if classes is not None and 3 <= len(classes) <= PAIR_SCAN_LIMIT:
        return classes
    if decision.pairs == "auto":
        return ()
    found = "the clean images carry no labels" if classes is None else f"the clean images hold {len(classes)} classes"
    raise UsageError(f"the pair scan (pairs 'on') needs labelled clean images of 3 to {PAIR_SCAN_LIMIT} classes, but "
                     f"{found}; set pairs to 'auto' or 'off' (--pairs).")


def _scan_pairs(model, images, labels, classes: tuple[int, ...], *, key, config: ScanConfig,
                decision: DecisionConfig, folder: Path | None, resume: bool, notify) -> PairNorms:
    """The pair scan of `classes` (planned_pair_classes), with its events and its checkpoint."""
    notify(PipelineEvent("pairs", pair_classes=len(classes)))
    pairs = scan_pairs(model, images, labels, config=config.pair_search(), key=key, quantize=decision.quantize,
                       callback=lambda progress: notify(PipelineEvent("pairs", progress=progress)),
                       checkpoint=None if folder is None else folder / PAIR_STATE_FILE, resume=resume)
    notify(PipelineEvent("pairs", pairs=pairs))
    return pairs


def _pairs_report(pairs: PairNorms | None, scored: PairScore | None) -> dict | None:
    if pairs is None or scored is None:
        return None
    return {**scored.as_dict(), "epochs": pairs.epochs.tolist(), "wall_time_s": round(pairs.wall_time_s, 2)}


def _write_outputs(folder: Path, result: ScanResult, verdict: Verdict, report: dict, *, prefix: str,
                   model_name: str, preprocessing, frozen: Sequence[int], pairs: PairNorms | None) -> None:
    try:
        save_trigger_pictures(result, folder, prefix)
        if pairs is not None and verdict.pairs is not None:
            save_pair_pictures(pairs, verdict.pairs.flagged, folder, prefix)
        save_summary(folder / "summary.png", result.masks, result.patterns, verdict,
                     title=f"{printable(Path(model_name).name)}: {verdict.headline()}", frozen=frozen)
        write_json_atomic(report, folder / "report.json")
        named = verdict.labels if verdict.status in ("infected", "suspicious") else ()
        TriggerSet(result.labels, result.masks, result.patterns, named=named).save(
            folder / TRIGGERS_FILE, preprocessing=preprocessing, verdict=verdict.status)
    except OSError as e:
        raise UsageError(f"cannot write the outputs to {quoted(str(folder), limit=200)} ({e.strerror or e}); the "
                         f"finished scan is kept in {folder / STATE_FILE}: resume it (--resume) to write them without "
                         "scanning again.") from None


def _restarts_report(best: LabelTriggers) -> dict:
    """Every restart's norm per label (None where it never reached the threshold) and the spread."""
    return {"restarts": best.restarts, "chosen": best.chosen_restart.tolist(),
            "norms": [[None if np.isnan(v) else float(v) for v in row] for row in best.restart_norms],
            "spread": [None if np.isnan(v) else float(v) for v in best.spread]}
