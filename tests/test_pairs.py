"""The pair scan (ncjax.scan.pairs) and the pair statistic that reads it (ncjax.verdict.pairs)."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images
from ncjax.scan.pairs import PAIR_SCAN_LIMIT, scan_pairs
from ncjax.verdict.decision import decide
from ncjax.verdict.pairs import pair_residuals, pair_score

SMALL = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=4, patience=2, attack_success_threshold=0.9)


def _matrix(k: int = 8, seed: int = 0) -> np.ndarray:
    """Pair norms with row and column effects and noise, as a clean model's look: norm = row x col x noise."""
    rng = np.random.default_rng(seed)
    norms = np.outer(rng.uniform(20, 60, k), rng.uniform(0.6, 1.6, k)) * rng.uniform(0.85, 1.15, (k, k))
    np.fill_diagonal(norms, np.nan)
    return norms


# ------------------------------------------------------------------------------------------ the statistic


def test_a_clean_matrix_flags_nothing_and_a_one_way_small_pair_flags_its_target():
    clean = pair_score(_matrix())
    assert clean.flagged == () and clean.targets == ()
    assert np.isnan(np.diag(clean.asymmetry)).all() and clean.top.asymmetry < 1.5
    planted = _matrix()
    planted[3, 6] /= 4  # only class 3 reaches label 6 cheaply
    score = pair_score(planted, classes=np.arange(10, 18))
    assert score.targets == (16,)
    assert (score.flagged[0].source, score.flagged[0].target) == (13, 16)
    assert score.flagged[0].asymmetry == pytest.approx(4, rel=0.35)


def test_similar_classes_small_both_ways_are_not_flagged():
    similar = _matrix()
    similar[1, 0] /= 4
    similar[0, 1] /= 4  # a 30 and a 50 speed-limit sign: each reaches the other cheaply
    assert pair_score(similar).flagged == ()
    # The row statistic alone (median of the row over the pair) would name them.
    row = np.nanmedian(similar, axis=1) / similar[:, 0]
    assert row[1] > 2


def test_the_row_and_column_effects_are_taken_out():
    norms = np.outer([10.0, 20.0, 40.0, 80.0, 160.0], [1.0, 2.0, 3.0, 5.0, 8.0])
    np.fill_diagonal(norms, np.nan)
    residual = pair_residuals(norms)
    # Median polish with the diagonal missing fits a product closely, not exactly.
    assert np.nanmax(np.abs(residual)) < 0.25 and np.isnan(np.diag(residual)).all()
    assert pair_score(norms).top.asymmetry < 1.5
    assert np.nanmax(norms) / np.nanmin(norms) > 30


def test_unreached_pairs_count_as_the_largest_norm_and_are_never_flagged():
    norms = _matrix()
    norms[2, 5] = np.nan  # class 2 never reached label 5
    norms[5, 2] /= 3  # so the reverse pair looks small against it
    score = pair_score(norms, min_asymmetry=1.5)
    assert np.isnan(score.asymmetry[2, 5])
    assert (5, 2) in {(f.source, f.target) for f in score.flagged}
    assert np.isnan(pair_residuals(np.full((4, 4), np.nan))).all()


@pytest.mark.parametrize("bad, match", [(dict(norms=np.ones((3, 4))), "square"), (dict(norms=np.ones((2, 2))), "3"),
                                        (dict(min_asymmetry=1.0), "min_asymmetry"),
                                        (dict(min_asymmetry=float("inf")), "min_asymmetry"),
                                        (dict(classes=[1, 2]), "classes")])
def test_bad_inputs_are_refused(bad, match):
    settings = {"norms": _matrix(4), **bad}
    with pytest.raises(ncjax.ConfigError, match=match):
        pair_score(**settings)


def test_a_flagged_pair_makes_a_clean_score_suspicious_and_the_line_says_why():
    label_norms = np.asarray([40.0, 42, 39, 44, 41, 43, 40, 38])
    planted = _matrix()
    planted[3, 6] /= 4
    verdict = decide(label_norms, pairs=pair_score(planted))
    assert verdict.status == "suspicious" and verdict.labels == (6,)
    assert "class 3 reaches label 6 with a trigger" in verdict.line() and "score" in verdict.line()
    clean = decide(label_norms, pairs=pair_score(_matrix()))
    assert clean.status == "clean" and "pair scan: largest asymmetry" in clean.line()
    # A score that names a label keeps it infected; the pair's target is mentioned, not added.
    infected = decide(np.asarray([10.0, 42, 39, 44, 41, 43, 40, 38]), pairs=pair_score(planted))
    assert infected.status == "infected" and infected.labels == (0,)
    assert "the pair scan also suspects: source-specific? class 3 reaches label 6" in infected.line()
    with pytest.raises(ncjax.ConfigError, match="score rule"):
        decide(label_norms, rule="reference", pairs=pair_score(planted))


# ------------------------------------------------------------------------------------------ the scan


def test_scan_pairs_searches_every_ordered_pair_of_the_labelled_classes():
    model, images = tiny_classifier(), tiny_images()
    labels = np.arange(48) % 3  # classes 0..2 of the model's 4
    pairs = scan_pairs(model, images, labels, config=SMALL, key=jax.random.key(0), quantize=False)
    assert pairs.classes.tolist() == [0, 1, 2] and pairs.pairs == 6
    assert np.isnan(np.diag(pairs.norms)).all() and (np.diag(pairs.epochs) == 0).all()
    off = ~np.eye(3, dtype=bool)
    assert (pairs.epochs[off] >= 1).all()
    # A cell is that pair's own search: the same as scanning the pair alone.
    alone = ncjax.scan_slots(model, images, ncjax.source_slots([(2, 0)]), image_labels=labels, config=SMALL,
                             key=jax.random.key(0))
    expected = float(alone.l1_norms[0]) if alone.reached_threshold[0] else float("nan")
    np.testing.assert_allclose(pairs.norms[2, 0], expected, rtol=1e-4)


def test_scan_pairs_refuses_what_it_cannot_pair():
    model, images = tiny_classifier(), tiny_images()
    with pytest.raises(ncjax.ScanInputError, match="labels"):
        scan_pairs(model, images, None, config=SMALL, key=jax.random.key(0))
    with pytest.raises(ncjax.ScanInputError, match="at least two"):
        scan_pairs(model, images, np.zeros(48, int), config=SMALL, key=jax.random.key(0))
    many = np.arange(48) % (PAIR_SCAN_LIMIT + 1)
    with pytest.raises(ncjax.ScanInputError, match="source check"):
        scan_pairs(tiny_classifier(num_classes=PAIR_SCAN_LIMIT + 1), images, many, config=SMALL,
                   key=jax.random.key(0))


def test_the_pair_search_settings():
    config = ncjax.ScanConfig.focused()
    assert config.pair_epochs == 45
    pairs = config.pair_search()
    assert (pairs.max_epochs, pairs.restarts, pairs.warmup_epochs, pairs.pair_epochs) == (45, 1, None, None)
    assert ncjax.ScanConfig.paper().pair_search().max_epochs == 1000
    with pytest.raises(ncjax.ConfigError, match="pair_epochs"):
        ncjax.ScanConfig(pair_epochs=0)
