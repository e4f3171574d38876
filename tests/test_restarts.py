"""Restarts: ScanConfig.restarts runs R searches per label; best_over_restarts keeps each label's smallest
trigger that reached the threshold."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images
from ncjax.scan.restarts import best_over_restarts

SMALL = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=6, patience=2, attack_success_threshold=0.9)


@pytest.fixture(scope="module")
def two_restarts():
    model, images = tiny_classifier(), tiny_images()
    return ncjax.scan_all_labels(model, images, labels=[1, 3], config=SMALL.replace(restarts=2), key=jax.random.key(0))


def test_restarts_run_side_by_side_label_major(two_restarts):
    result = two_restarts
    assert result.labels.tolist() == [1, 1, 3, 3] and result.restarts.tolist() == [0, 1, 0, 1]
    plain = ncjax.scan_all_labels(tiny_classifier(), tiny_images(), labels=[1, 3], config=SMALL, key=jax.random.key(0))
    np.testing.assert_allclose(result.masks[[0, 2]], plain.masks, atol=1e-3)  # restart 0 is the plain scan


def test_best_keeps_the_smallest_reached_trigger(two_restarts):
    result = two_restarts
    best = best_over_restarts(result)
    assert best.labels.tolist() == [1, 3] and best.restarts == 2
    for i, label in enumerate([1, 3]):
        slots = np.flatnonzero(result.labels == label)
        reached = [s for s in slots if result.reached_threshold[s]]
        wanted = min(reached or slots, key=lambda s: result.l1_norms[s])
        assert best.chosen_slot[i] == wanted and best.chosen_restart[i] == result.restarts[wanted]
        assert best.l1_norms[i] == pytest.approx(result.l1_norms[wanted])
        np.testing.assert_array_equal(best.masks[i], result.masks[wanted])
        assert best.reached_threshold[i] == bool(reached)
    one = result.select(best.chosen_slot)
    assert one.labels.tolist() == [1, 3] and one.logs.cost.shape[0] == 2
    np.testing.assert_array_equal(one.masks, best.masks)


def test_an_unreached_restart_loses_to_a_reached_larger_one(two_restarts):
    result = two_restarts
    norms = np.asarray([5.0, 9.0, 4.0, 3.0])
    reached = np.asarray([False, True, True, True])
    fake = __import__("dataclasses").replace(result, l1_norms=norms, reached_threshold=reached)
    best = best_over_restarts(fake)
    assert best.chosen_restart.tolist() == [1, 1] and best.l1_norms.tolist() == [9.0, 3.0]
    assert best.restart_norms[0, 0] != best.restart_norms[0, 0]  # NaN: restart 0 never reached the threshold
    np.testing.assert_allclose(best.spread, [1.0, 4.0 / 3.0])
    nothing = __import__("dataclasses").replace(result, l1_norms=norms, reached_threshold=np.zeros(4, bool))
    none = best_over_restarts(nothing)
    assert not none.reached_threshold.any() and np.isnan(none.spread).all() and none.l1_norms.tolist() == [5.0, 3.0]


def test_source_slots_are_refused():
    model, images = tiny_classifier(), tiny_images()
    mixed = ncjax.scan_slots(model, images, (ncjax.Slot(target=0), ncjax.Slot(target=0, source=2)),
                             image_labels=np.arange(48) % 4, config=SMALL.replace(max_epochs=1), key=jax.random.key(0))
    with pytest.raises(ncjax.ScanInputError, match="source-class slots"):
        best_over_restarts(mixed)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_restarts_must_be_a_positive_int(value):
    with pytest.raises(ncjax.ConfigError, match="restarts"):
        ncjax.ScanConfig(restarts=value)
