"""The synthetic traffic-sign generator."""
from __future__ import annotations

import numpy as np
import pytest

from ncjax.lab import synth


def test_deterministic_by_seed():
    a, la = synth.generate(100, seed=7)
    b, lb = synth.generate(100, seed=7)
    c, _ = synth.generate(100, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_shapes_range_and_balance():
    images, labels = synth.generate(43 * 5 + 3, seed=0)
    assert images.shape == (218, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(43))
    counts = np.bincount(labels, minlength=43)
    assert counts.min() == 5 and counts.max() == 6
    assert images.min() < 30 and images.max() > 225  # uses the range, not a flat grey
    assert len(synth.CLASS_NAMES) == synth.NUM_CLASSES == len(synth.CLASS_SPECS)


def test_given_labels_and_size():
    images, labels = synth.generate(4, seed=0, labels=np.array([33, 14, 0, 42]), image_size=48)
    assert images.shape == (4, 48, 48, 3)
    np.testing.assert_array_equal(labels, [33, 14, 0, 42])


def test_classes_are_distinct_templates():
    tpl = synth.templates()
    assert tpl.shape == (43, synth.TEMPLATE_SIZE, synth.TEMPLATE_SIZE, 4)
    flat = tpl.reshape(43, -1)
    distances = np.abs(flat[:, None] - flat[None]).mean(-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 0.002  # no two classes draw the same sign


def test_difficulty_zero_is_a_centred_sign():
    images, _ = synth.generate(2, seed=0, labels=np.array([17, 17]), difficulty=0.0)
    centre = images[:, 14:18, 4:28].astype(float)
    # 'no entry': a white bar across a red disc, identical in both images apart from the background.
    assert centre.mean(axis=(0, 1, 2)).min() > 180
    np.testing.assert_array_equal(images[0, 12:20, 12:20], images[1, 12:20, 12:20])


def test_contact_sheet_layout():
    sheet = synth.contact_sheet(2, scale=1)
    assert sheet.shape == (43 * 34, 2 * 34, 3) and sheet.dtype == np.uint8


def test_negative_count_is_an_error():
    with pytest.raises(ValueError):
        synth.generate(-1, seed=0)
