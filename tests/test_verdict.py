"""The verdict: the ratio score (default), the reference's rule, the gap rule, and the line people read."""
from __future__ import annotations

import pytest

import ncjax
from ncjax.verdict.decision import decide

BULK = [100.0, 95.0, 105.0, 98.0, 102.0, 97.0, 103.0, 99.0]


def test_a_clear_trigger_is_infected_under_every_rule():
    norms = BULK + [101.0, 20.0]
    for rule in ("score", "gap", "reference"):
        v = decide(norms, rule=rule)
        assert v.status == "infected" and v.infected and v.labels == (9,)
        assert v.line().startswith("INFECTED: label 9 ")
    assert "4.75x below" in decide(norms, rule="gap").line()
    assert decide(norms).rule == "score" and "9: 4.97x, >= 2.8" in decide(norms).line()


def test_flags_without_a_gap_are_suspicious_not_infected():
    norms = BULK + [80.0, 75.0]
    assert decide(norms, rule="reference").status == "infected"
    v = decide(norms, rule="gap")
    assert v.status == "suspicious" and not v.infected and v.labels == (9, 8)
    assert v.line().startswith("SUSPICIOUS: the reference's rule flags labels 9, 8") and "1.19x" in v.line()
    assert "their trigger norms are only" in v.line()


def test_nothing_flagged_is_clean_and_labels_are_carried():
    v = decide(BULK + [96.0, 104.0], labels=list(range(10, 20)))
    assert v.status == "clean" and v.labels == () and v.line().startswith("clean: score 1.05")
    assert decide(BULK + [96.0, 104.0], rule="gap").line().startswith("clean: no label flagged")
    w = decide(BULK + [101.0, 20.0], labels=list(range(10, 20)))
    assert w.labels == (19,) and w.mad.flagged == (19,)


def test_threshold_and_min_gap_are_passed_on():
    norms = BULK + [101.0, 60.0]  # anomaly index of 60: 39.5 / 3.71 = 10.7; gap 95/60 = 1.58
    assert decide(norms, rule="gap").infected
    assert decide(norms, rule="gap", min_gap=2.0).status == "suspicious"
    assert decide(norms, rule="gap", threshold=11.0).status == "clean"
    assert decide(norms).status == "clean"  # 99.5 / 60 = 1.66x, below the score's suspicious 2.4
    assert decide(norms, min_ratio=1.6).infected


def test_unknown_rule():
    with pytest.raises(ncjax.ConfigError, match="rule"):
        decide(BULK, rule="vote")  # type: ignore[arg-type]  # a wrong type, on purpose


def test_unknown_rule_lists_the_rules():
    import pytest

    import ncjax

    rules = "'score', 'gap', 'reference', 'margin', 'combined'"
    with pytest.raises(ncjax.ConfigError, match=f"verdict rule must be one of {rules}; got 'mad'"):
        decide([1.0, 2.0, 3.0], rule="mad")  # type: ignore[arg-type]  # a wrong type, on purpose


def test_headline_names_status_and_labels():
    norms = [10.0] + [100.0 + i for i in range(20)]
    assert decide(norms).headline() == "INFECTED: label 0"
    # Ratios 2.70 and 2.57 (median 108): between suspicious_ratio and min_ratio.
    assert decide([40.0, 42.0, 80.0] + [100.0 + i for i in range(20)]).headline() == "SUSPICIOUS: labels 0, 1"
    assert decide([70.0, 74.0, 80.0] + [100.0 + i for i in range(20)], rule="gap").headline() == \
        "SUSPICIOUS: labels 0, 1, 2"
    assert decide([100.0 + i for i in range(20)]).headline() == "clean"


def test_unreached_labels_make_the_verdict_inconclusive_never_clean():
    import pytest

    import ncjax

    norms = [100.0 + i for i in range(10)]
    reached = [True] * 10
    assert decide(norms, reached=reached).status == "clean"
    reached[3] = reached[7] = False
    verdict = decide(norms, reached=reached)
    assert verdict.status == "inconclusive" and verdict.labels == (3, 7) and not verdict.infected
    assert verdict.line().startswith("INCONCLUSIVE: 2 of 10 labels (3, 7) never reached")
    clear = [10.0] + norms[1:]
    assert decide(clear, reached=reached).status == "inconclusive"  # norms that do not compare prove nothing
    with pytest.raises(ncjax.ConfigError, match="one bool per label"):
        decide(norms, reached=[True])
    for bad in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ncjax.ConfigError, match="threshold must be a finite number > 0"):
            decide(norms, threshold=bad)


def test_summary_of_an_inconclusive_scan():
    import numpy as np

    from ncjax.pipeline.summary import summary_image

    verdict = decide([100.0 + i for i in range(10)], reached=[False] + [True] * 9)
    image = summary_image(np.zeros((10, 6, 6)), np.zeros((10, 6, 6, 3)), verdict, title=verdict.headline())
    assert image.width >= 720


def test_the_source_check_prunes_the_labels_named_but_never_the_best_agreeing_candidate():
    from ncjax.verdict.source_check import SourceCheck

    norms = [100.0 + i for i in range(10)] + [20.0, 22.0]  # labels 10 and 11: candidates (ratio > 4)

    def check(label, spread_high):
        return SourceCheck(label=label, label_norm=norms[label], sources=(0, 1, 2, 3),
                           norms=(10.0, 10.0, 10.0 * spread_high, 10.0 * spread_high))

    both_agree = decide(norms, sources=[check(10, 1.1), check(11, 1.2)])
    assert both_agree.labels == (10, 11) and both_agree.natural == ()
    one_natural = decide(norms, sources=[check(10, 1.1), check(11, 5.0)])
    assert one_natural.infected and one_natural.labels == (10,) and one_natural.natural == (11,)
    assert "label 11 set aside" in one_natural.line() and "source spread 10: " in one_natural.line()
    # Every candidate spreads widely: the one that agrees best is still named; the score decides.
    all_natural = decide(norms, sources=[check(10, 4.0), check(11, 5.0)])
    assert all_natural.infected and all_natural.labels == (10,) and all_natural.natural == (11,)
    assert decide(norms, sources=[check(10, 4.0)], max_spread=5.0).labels == (10, 11)
    with pytest.raises(ncjax.ConfigError, match="max_spread"):
        decide(norms, max_spread=0.5)


MARGINS = [80.0, 120.0, 95.0, 105.0, 70.0, 130.0, 90.0, 110.0, 100.0, 115.0]
OUTLIER = MARGINS[:9] + [400.0]  # label 9's margin stands far above the others'


def test_the_margin_rule_reads_the_margin_statistic_alone():
    found = decide(BULK + [101.0, 99.0], rule="margin", margin=ncjax.margin_score(OUTLIER))
    assert found.status == "infected" and found.labels == (9,) and found.evidence == ("margin",)
    assert found.line().startswith("INFECTED: label 9 (maximum margin: label 9 reaches 400.0")
    clear = decide(BULK + [101.0, 20.0], rule="margin", margin=ncjax.margin_score(MARGINS))
    assert clear.status == "clean" and clear.line().startswith("clean: maximum margin: label 5 reaches 130.0")
    with pytest.raises(ncjax.ConfigError, match="margin=ncjax.margin_score"):
        decide(BULK, rule="combined")


@pytest.mark.parametrize("norms, margins, status, labels, evidence, starts", [
    (BULK + [101.0, 20.0], MARGINS, "infected", (9,), ("trigger",), "INFECTED: label 9 (score"),
    (BULK + [101.0, 99.0], OUTLIER, "infected", (9,), ("margin",), "INFECTED: label 9 by its logit margin"),
    (BULK + [20.0, 99.0], OUTLIER, "infected", (8, 9), ("trigger", "margin"), "INFECTED: label 8 (score"),
    (BULK + [101.0, 99.0], MARGINS, "clean", (), (), "clean: score"),
])
def test_the_combined_rule_says_which_evidence_fired(norms, margins, status, labels, evidence, starts):
    v = decide(norms, rule="combined", margin=ncjax.margin_score(margins))
    assert (v.status, v.labels, v.evidence, v.rule) == (status, labels, evidence, "combined")
    assert v.line().startswith(starts) and "maximum margin: label" in v.line()
    assert v.by_trigger is not None and v.by_trigger.rule == "score"
    if evidence == ("trigger", "margin"):
        assert "also label 9 by its logit margin" in v.line()


def test_a_flagged_margin_makes_an_inconclusive_trigger_scan_infected_and_an_unflagged_one_leaves_it():
    reached = [True] * 9 + [False]
    flagged = decide(BULK + [101.0, 99.0], rule="combined", reached=reached, margin=ncjax.margin_score(OUTLIER))
    assert flagged.status == "infected" and flagged.labels == (9,) and flagged.evidence == ("margin",)
    plain = decide(BULK + [101.0, 99.0], rule="combined", reached=reached, margin=ncjax.margin_score(MARGINS))
    assert plain.status == "inconclusive" and plain.line().startswith("INCONCLUSIVE")
