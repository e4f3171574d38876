"""Slots: restarts differ only by initialization, a source slot draws only its class, a label slot is the same
search whatever else runs beside it."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ncjax
import ncjax.scan.compiled as compiled_module
import ncjax.scan.engine as scan_module
from conftest import tiny_classifier, tiny_images
from ncjax.scan.slots import Slot, build_slot_table, label_slots, restart_slots, slot_keys, source_slots
from ncjax.search.step import draw_batch, draw_pool_batch

SMALL = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=6, patience=2, attack_success_threshold=0.9)
IMAGE_LABELS = np.arange(48) % 4  # 12 images per class


@pytest.fixture(scope="module")
def tiny():
    return tiny_classifier(), tiny_images()


def _same_search(a, b, i, j, atol=1e-3):
    np.testing.assert_array_equal(a.logs.cost[i], b.logs.cost[j])
    assert a.epochs[i] == b.epochs[j] and a.reached_threshold[i] == b.reached_threshold[j]
    np.testing.assert_allclose(a.masks[i], b.masks[j], atol=atol)


def test_label_slots_are_the_scan_of_every_label(tiny):
    model, images = tiny
    plain = ncjax.scan_all_labels(model, images, config=SMALL, key=jax.random.key(0))
    slots = ncjax.scan_slots(model, images, label_slots(range(4)), config=SMALL, key=jax.random.key(0))
    np.testing.assert_array_equal(plain.masks, slots.masks)
    np.testing.assert_array_equal(plain.logs.reg, slots.logs.reg)
    assert plain.slots == label_slots(range(4)) and plain.sources.tolist() == [-1] * 4


def test_restarts_differ_only_by_initialization(tiny, monkeypatch):
    model, images = tiny
    slots = restart_slots([1], 2)
    assert slots == (Slot(target=1, restart=0), Slot(target=1, restart=1))
    two = ncjax.scan_slots(model, images, slots, config=SMALL, key=jax.random.key(0))
    assert not np.array_equal(two.masks[0], two.masks[1])
    _same_search(two, ncjax.scan_all_labels(model, images, labels=[1], config=SMALL, key=jax.random.key(0)), 0, 0)
    # Given restart 0's initial trigger, restart 1 is the same search to the bit: same batches, same schedule.
    monkeypatch.setattr(scan_module, "slot_keys", lambda key, targets, restarts: slot_keys(key, targets, 0 * restarts))
    same = ncjax.scan_slots(model, images, slots, config=SMALL, key=jax.random.key(0))
    np.testing.assert_array_equal(same.masks[0], same.masks[1])
    np.testing.assert_array_equal(same.logs.reg[0], same.logs.reg[1])
    np.testing.assert_array_equal(same.restarts, [0, 1])


def test_a_source_slot_draws_only_from_its_class(tiny, monkeypatch):
    model, images = tiny
    seen = []

    def recording(data_key, step, pool, pool_size, batch_size):
        indices = draw_pool_batch(data_key, step, pool, pool_size, batch_size)
        jax.debug.callback(lambda size, idx: seen.append((int(size), np.asarray(idx).copy())), pool_size, indices)
        return indices

    monkeypatch.setattr(compiled_module, "draw_pool_batch", recording)
    slots = (Slot(target=0), *source_slots([(2, 0)]))
    result = ncjax.scan_slots(model, images, slots, image_labels=IMAGE_LABELS, config=SMALL.replace(max_epochs=3),
                              key=jax.random.key(0))
    from_class = [idx for size, idx in seen if size == 12]
    from_all = [idx for size, idx in seen if size == 48]
    assert len(from_class) == len(from_all) == 3 * SMALL.steps_per_epoch
    assert all(set(IMAGE_LABELS[idx]) == {2} for idx in from_class)
    assert len(set(np.concatenate(from_class))) == 12  # every image of the class is used
    assert len(set(IMAGE_LABELS[np.concatenate(from_all)])) == 4
    assert result.sources.tolist() == [-1, 2] and result.labels.tolist() == [0, 0]


def test_a_label_slot_beside_source_slots_is_the_same_search(tiny):
    """Per-lane batches from the pool of all images are the shared batches: the label's search is unchanged."""
    model, images = tiny
    mixed = ncjax.scan_slots(model, images, (Slot(target=3), Slot(target=3, source=1)), image_labels=IMAGE_LABELS,
                             config=SMALL, key=jax.random.key(0))
    alone = ncjax.scan_all_labels(model, images, labels=[3], config=SMALL, key=jax.random.key(0))
    _same_search(mixed, alone, 0, 0)
    assert not np.array_equal(mixed.masks[0], mixed.masks[1])


def test_pool_draws_equal_shared_draws_and_small_pools_cycle():
    key = jax.random.key(7)
    pool = jnp.arange(40, dtype=jnp.int32)
    for step in range(12):
        np.testing.assert_array_equal(draw_pool_batch(key, jnp.int32(step), pool, jnp.int32(40), 8),
                                      draw_batch(key, jnp.int32(step), 40, 8))
    members = jnp.asarray([3, 9, 17] + [0] * 37, jnp.int32)  # a class of 3 images, padded to 40
    batch = np.asarray(draw_pool_batch(key, jnp.int32(0), members, jnp.int32(3), 8))
    assert set(batch.tolist()) == {3, 9, 17} and len(batch) == 8


def test_resume_of_a_mixed_slot_list_equals_uninterrupted(tiny, tmp_path):
    model, images = tiny
    slots = (*label_slots([0, 1]), *source_slots([(3, 2)]), *restart_slots([2], 2)[1:])
    kwargs = dict(image_labels=IMAGE_LABELS, config=SMALL.replace(label_chunk=2), key=jax.random.key(0))
    whole = ncjax.scan_slots(model, images, slots, **kwargs)
    path, calls = tmp_path / "ckpt.npz", []

    def interrupt(progress):
        calls.append(progress)
        if len(calls) == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_slots(model, images, slots, checkpoint=path, callback=interrupt, **kwargs)
    resumed = ncjax.scan_slots(model, images, slots, checkpoint=path, resume=True, **kwargs)
    np.testing.assert_array_equal(resumed.masks, whole.masks)
    np.testing.assert_array_equal(resumed.logs.cost, whole.logs.cost)


@pytest.mark.parametrize("slots, image_labels, match", [
    ((Slot(target=1, source=2),), None, "pass image_labels"),
    ((Slot(target=1, source=2),), np.zeros(48, int), "no clean image has label 2"),
    ((Slot(target=7),), None, "out of range"),
    ((Slot(target=1), Slot(target=1)), None, "duplicates"),
    ((), None, "non-empty"),
    ((Slot(target=1),), np.zeros(5, int), "one int per image"),
])
def test_bad_slots_are_refused_before_jit(tiny, slots, image_labels, match):
    model, images = tiny
    with pytest.raises(ncjax.ScanInputError, match=match):
        ncjax.scan_slots(model, images, slots, image_labels=image_labels, config=SMALL, key=jax.random.key(0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(target=-1), "non-negative"), (dict(target=1, source=1), "both 1"), (dict(target=1, restart=1.5), "restart"),
    (dict(target=1, direction="backward"), "direction must be one of 'forward', 'reverse'"),
])
def test_slot_validation(kwargs, match):
    with pytest.raises(ncjax.ScanInputError if "direction" not in kwargs else ncjax.ConfigError, match=match):
        Slot(**kwargs)


def test_slot_table_pools():
    table = build_slot_table((Slot(target=0), Slot(target=0, source=3), Slot(target=1, source=3)), num_classes=4,
                             num_images=48, image_labels=IMAGE_LABELS, batch_size=8)
    assert table.pools.tolist() == [0, 1, 1] and table.pool_sizes.tolist() == [48, 12]
    assert set(IMAGE_LABELS[table.pool_table[1, :12]]) == {3} and table.per_slot_batches
