"""The ratio score: median norm over each label's norm, and the labels it names."""
from __future__ import annotations

import numpy as np
import pytest

import ncjax
from ncjax.verdict.decision import decide
from ncjax.verdict.score import ratio_score

BULK = [100.0, 95.0, 105.0, 98.0, 102.0, 97.0, 103.0, 99.0]


def test_ratios_and_candidates():
    s = ratio_score(BULK + [101.0, 20.0], labels=list(range(10, 20)))
    assert s.median == pytest.approx(99.5) and s.top_label == 19 and s.score == pytest.approx(99.5 / 20)
    assert s.candidates == (19,) and s.ratios[0] == pytest.approx(0.995)


def test_two_small_triggers_are_both_named_largest_ratio_first():
    """The MNIST case: two small triggers among 10 labels. The MAD of the bulk swallows them; the
    ratio to the median does not."""
    norms = [4.8, 5.9, 41.2, 53.2, 66.1, 86.0, 90.0, 95.0, 110.0, 120.0]
    assert decide(norms, rule="reference").status == "clean"
    s = ratio_score(norms)
    assert s.candidates == (0, 1) and s.score == pytest.approx(np.median(norms) / 4.8)
    v = decide(norms)
    assert v.status == "infected" and v.labels == (0, 1) and v.line().startswith("INFECTED: labels 0, 1 (score")


def test_min_ratio_moves_the_line():
    norms = BULK + [101.0, 40.0]  # ratio of 40: 2.5
    assert ratio_score(norms).candidates == ()
    assert ratio_score(norms, min_ratio=2.4).candidates == (9,)


def test_an_empty_mask_has_an_infinite_ratio():
    s = ratio_score(BULK + [0.0])
    assert s.candidates == (8,) and s.score == float("inf")


def test_fewer_than_three_labels_name_nothing():
    s = ratio_score([10.0, 100.0])
    assert s.candidates == () and "at least 3" in s.note


def test_clean_and_suspicious_lines():
    clean = decide(BULK + [96.0, 104.0])
    assert clean.status == "clean" and clean.line().startswith("clean: score 1.05")
    # MAD flags 9 (index > 2) but its trigger is only 1.32x smaller than the median: clean, the flag reported.
    v = decide(BULK + [99.0, 75.0])
    assert v.mad.flagged == (9,) and v.status == "clean"
    assert v.line().startswith("clean: score 1.32") and "rule flags label 9" in v.line()
    # Between suspicious_ratio (2.4) and min_ratio (2.8): suspicious, naming the labels in that band.
    v = decide(BULK + [99.0, 38.0])
    assert v.status == "suspicious" and v.labels == (9,) and ">= 2.4 but < 2.8" in v.line()
    assert decide(BULK + [99.0, 38.0], suspicious_ratio=2.8).status == "clean"  # an empty band: never suspicious
    assert decide(BULK + [99.0, 38.0], min_ratio=2.5).infected


@pytest.mark.parametrize("bad", [1.0, 0.5, float("inf"), float("nan"), True])
def test_suspicious_ratio_is_checked(bad):
    with pytest.raises(ncjax.ConfigError, match="suspicious_ratio"):
        decide(BULK + [99.0, 38.0], suspicious_ratio=bad)
    with pytest.raises(ncjax.ConfigError, match="suspicious_ratio"):
        ncjax.DecisionConfig(suspicious_ratio=bad)


@pytest.mark.parametrize("bad", [1.0, 0.5, float("inf"), float("nan"), True, "3"])
def test_min_ratio_is_checked(bad):
    with pytest.raises(ncjax.ConfigError, match="min_ratio"):
        ratio_score(BULK, min_ratio=bad)


@pytest.mark.parametrize("norms", [[], [1.0, float("nan"), 2.0], [[1.0, 2.0]], [1.0, -2.0, 3.0]])
def test_bad_norms_are_refused(norms):
    with pytest.raises(ncjax.ConfigError, match="norms"):
        ratio_score(norms)
