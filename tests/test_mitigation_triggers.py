"""TriggerSet and triggers.npz: exact float triggers, checked on the way in, and known triggers from pictures."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import ncjax
from ncjax.mitigation.known_trigger import read_true_trigger
from ncjax.pipeline.triggers import TRIGGERS_FILE


def _set(labels=(3, 5), shape=(8, 8, 3), seed=0) -> ncjax.TriggerSet:
    rng = np.random.default_rng(seed)
    k = len(labels)
    return ncjax.TriggerSet(list(labels), rng.uniform(0, 1, (k, *shape[:2])), rng.uniform(0, 255, (k, *shape)),
                            named=labels[:1])


def test_save_and_load_keep_every_value_the_preprocessing_and_the_verdict(tmp_path):
    triggers = _set()
    preprocessing = ncjax.Preprocessing(mode="custom", scale=0.5, offset=-1.0, channel_order="bgr")
    triggers.save(tmp_path / TRIGGERS_FILE, preprocessing=preprocessing, verdict="infected")
    loaded = ncjax.load_triggers(tmp_path)  # the scan's folder is enough
    np.testing.assert_array_equal(loaded.triggers.masks, triggers.masks)
    np.testing.assert_array_equal(loaded.triggers.patterns, triggers.patterns)
    assert loaded.triggers.labels.tolist() == [3, 5] and loaded.triggers.named == (3,)
    assert loaded.preprocessing == preprocessing and loaded.verdict == "infected"


def test_select_orders_by_the_labels_asked_and_refuses_missing_ones():
    triggers = _set()
    chosen = triggers.select([5, 3])
    assert chosen.labels.tolist() == [5, 3] and chosen.named == (3,)
    np.testing.assert_array_equal(chosen.masks[0], triggers.masks[1])
    with pytest.raises(ncjax.MitigationError, match=r"label\(s\) \[7\]"):
        triggers.select([7])


def test_stamp_blends_in_raw_pixels_whatever_the_models_scale():
    triggers = _set(labels=(1,))
    images = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    raw = triggers.stamp(images, 0, ncjax.Preprocessing())
    unit = triggers.stamp(images / 255, 0, ncjax.Preprocessing(mode="mnist"))
    expected = (1 - triggers.masks[0][..., None]) * images + triggers.masks[0][..., None] * triggers.patterns[0]
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(unit * 255, expected, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("masks, patterns, match", [
    (np.full((1, 4, 4), 1.5), np.zeros((1, 4, 4, 3)), "masks must lie"),
    (np.zeros((1, 4, 4)), np.full((1, 4, 4, 3), np.nan), "masks must lie"),
    (np.zeros((1, 4, 5)), np.zeros((1, 4, 4, 3)), "need labels"),
])
def test_bad_triggers_are_refused(masks, patterns, match):
    with pytest.raises(ncjax.MitigationError, match=match):
        ncjax.TriggerSet([0], masks, patterns)


def test_float_rounding_at_the_ends_is_clipped_not_refused():
    triggers = ncjax.TriggerSet([0], np.full((1, 2, 2), -6e-8), np.full((1, 2, 2, 1), 255.00002))
    assert triggers.masks.min() == 0 and triggers.patterns.max() == 255


def test_files_that_are_not_triggers_files_are_refused(tmp_path):
    with pytest.raises(ncjax.MitigationError, match="no triggers file"):
        ncjax.load_triggers(tmp_path)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ncjax.MitigationError, match="not an .npz archive"):
        ncjax.load_triggers(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ncjax.MitigationError, match="not an ncjax triggers file"):
        ncjax.load_triggers(tmp_path / "other.npz")
    np.savez(tmp_path / "meta.npz", labels=np.zeros(1), masks=np.zeros((1, 2, 2)), patterns=np.zeros((1, 2, 2, 1)),
             meta=np.asarray("{not json"))
    with pytest.raises(ncjax.MitigationError, match="metadata"):
        ncjax.load_triggers(tmp_path / "meta.npz")


def test_a_known_trigger_reads_from_two_pictures_or_an_npz(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[5:7, 5:7] = 255
    Image.fromarray(mask, "L").save(tmp_path / "mask.png")
    Image.fromarray(np.repeat(mask[..., None], 3, -1), "RGB").save(tmp_path / "pattern.png")
    removed = _set(labels=(4,))
    true = read_true_trigger(f"{tmp_path}/mask.png,{tmp_path}/pattern.png", None, removed, (8, 8, 3))
    assert true.labels.tolist() == [4] and true.masks[0].sum() == 4 and true.patterns[0].max() == 255
    np.savez(tmp_path / "true.npz", mask=true.masks[0], pattern=true.patterns[0])
    again = read_true_trigger(str(tmp_path / "true.npz"), 2, removed, (8, 8, 3))
    assert again.labels.tolist() == [2]
    np.testing.assert_array_equal(again.masks, true.masks)
    with pytest.raises(ncjax.MitigationError, match="images are"):
        read_true_trigger(str(tmp_path / "true.npz"), 2, removed, (9, 9, 3))
    with pytest.raises(ncjax.MitigationError, match="--true-target"):
        read_true_trigger(str(tmp_path / "true.npz"), None, _set(labels=(1, 2)), (8, 8, 3))


def test_stamping_for_a_bgr_model_blends_the_rgb_trigger_then_reorders():
    triggers = _set(labels=(1,))
    bgr = ncjax.Preprocessing(mode="custom", scale=1 / 255, offset=0.0, channel_order="bgr")
    raw = np.random.default_rng(2).uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    model_input = raw[..., ::-1] / 255
    stamped = triggers.stamp(model_input, 0, bgr)
    expected = triggers.stamp(raw, 0, ncjax.Preprocessing())[..., ::-1] / 255
    np.testing.assert_allclose(stamped, expected, rtol=1e-5, atol=1e-5)
