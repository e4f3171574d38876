"""The source-specific check: one search per (source, candidate) pair, reduced to a SourceCheck per candidate."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images
from ncjax.scan.sources import check_sources, pick_sources
from ncjax.verdict.source_check import SourceCheck

SMALL = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=4, patience=2, attack_success_threshold=0.9)
IMAGE_LABELS = np.arange(48) % 4


def test_pick_sources_spreads_over_the_other_classes():
    assert pick_sources(2, range(5), None) == (0, 1, 3, 4)
    assert pick_sources(0, range(43), 8) == (1, 7, 13, 19, 24, 30, 36, 42)
    assert pick_sources(3, [3, 3, 1], 8) == (1,)


def test_check_sources_runs_every_pair():
    model, images = tiny_classifier(), tiny_images()
    checks = check_sources(model, images, IMAGE_LABELS, {1: 12.0, 3: 20.0}, config=SMALL, key=jax.random.key(0),
                           sources_per_label=2, quantize=False)
    assert [c.label for c in checks] == [1, 3] and [c.label_norm for c in checks] == [12.0, 20.0]
    assert checks[0].sources == (0, 3) and checks[1].sources == (0, 2)
    # Each norm is that pair's own search: the same as scanning the pair alone.
    alone = ncjax.scan_slots(model, images, ncjax.source_slots([(3, 1)]), image_labels=IMAGE_LABELS, config=SMALL,
                             key=jax.random.key(0))
    expected = float(alone.l1_norms[0]) if alone.reached_threshold[0] else float("nan")
    np.testing.assert_allclose(checks[0].norms[1], expected, rtol=1e-4)


def test_statistics():
    check = SourceCheck(label=5, label_norm=10.0, sources=(0, 1, 2, 3), norms=(4.0, 6.0, float("nan"), 9.0))
    assert check.reached_share == 0.75
    assert check.median_ratio == pytest.approx(7.5 / 10.0)  # the unreached source counts as infinitely large


def test_inputs_are_checked():
    model, images = tiny_classifier(), tiny_images()
    assert check_sources(model, images, IMAGE_LABELS, {}, config=SMALL, key=jax.random.key(0)) == ()
    with pytest.raises(ncjax.ScanInputError, match="labels"):
        check_sources(model, images, None, {1: 3.0}, config=SMALL, key=jax.random.key(0))
    with pytest.raises(ncjax.ScanInputError, match="sources_per_label"):
        check_sources(model, images, IMAGE_LABELS, {1: 3.0}, config=SMALL, key=jax.random.key(0), sources_per_label=0)
    with pytest.raises(ncjax.ScanInputError, match="no class other"):
        check_sources(model, images, np.ones(48, int), {1: 3.0}, config=SMALL, key=jax.random.key(0))


def test_spread_is_near_one_for_one_shared_trigger_and_large_for_a_few_cheap_sources():
    shared = SourceCheck(label=33, label_norm=24.0, sources=tuple(range(8)),
                         norms=(8.9, 6.2, 15.4, 9.1, 8.9, 9.0, 10.4, 9.3))
    natural = SourceCheck(label=12, label_norm=20.0, sources=tuple(range(8)),
                          norms=(25.3, 5.9, 14.5, 23.2, 5.3, 20.1, 10.4, 5.0))
    assert shared.spread == pytest.approx(9.6 / 8.9, rel=0.02) and natural.spread > 3
    mostly_unreached = SourceCheck(label=1, label_norm=5.0, sources=(0, 2, 3, 4),
                                   norms=(4.0, float("nan"), float("nan"), 5.0))
    assert mostly_unreached.spread == float("inf")


def test_check_candidates_checks_the_scores_largest_candidates_once_each():
    from ncjax.scan.sources import check_candidates
    from ncjax.verdict.score import ratio_score
    from ncjax.verdict.source_check import CHECKED_CANDIDATES

    model, images = tiny_classifier(), tiny_images()
    score = ratio_score([100.0, 10.0, 20.0, 30.0], min_ratio=1.2)  # median 25: ratios 2.5 and 1.25 reach it
    assert score.candidates == (1, 2) and CHECKED_CANDIDATES == 3
    checks = check_candidates(model, images, IMAGE_LABELS, score, config=SMALL.replace(restarts=2),
                              key=jax.random.key(0), sources_per_label=2, quantize=False)
    assert [c.label for c in checks] == [1, 2] and [c.label_norm for c in checks] == [10.0, 20.0]
    # One search per pair whatever config.restarts says: the same norms as check_sources with one restart.
    direct = check_sources(model, images, IMAGE_LABELS, {1: 10.0, 2: 20.0}, config=SMALL, key=jax.random.key(0),
                           sources_per_label=2, quantize=False)
    np.testing.assert_array_equal([c.norms for c in checks], [c.norms for c in direct])
    none = ratio_score([10.0, 11.0, 12.0])
    assert check_candidates(model, images, IMAGE_LABELS, none, config=SMALL, key=jax.random.key(0)) == ()


def test_check_candidates_of_a_verdict_without_a_score_checks_nothing():
    from ncjax.scan.sources import check_candidates
    from ncjax.verdict.decision import decide

    inconclusive = decide([40.0, 100.0, 101.0, 102.0], reached=[True, True, False, True])
    assert inconclusive.score is None
    assert check_candidates(None, np.zeros((4, 8, 8, 3)), np.arange(4), inconclusive.score,
                            config=ncjax.ScanConfig.fast(), key=jax.random.key(0)) == ()
