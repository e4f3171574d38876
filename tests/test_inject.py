"""Backdoor injection: exact stamping, the injection ratio, and training that plants a working trigger."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from ncjax.lab import synth
from ncjax.lab.inject import Backdoor, TrainConfig, evaluate, poison, train_classifier
from ncjax.models.keras import save_keras_h5


def test_reference_trigger_is_white_4x4_at_rows_cols_27_to_30():
    b = Backdoor.square(4, target=33)
    rows, cols = np.nonzero(b.mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (27, 30, 27, 30) and b.mask.sum() == 16
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    stamped = b.stamp(images)
    assert np.all(stamped[:, 27:31, 27:31] == 255)
    outside = np.ones((32, 32), bool)
    outside[27:31, 27:31] = False
    np.testing.assert_array_equal(stamped[:, outside], images[:, outside])


@pytest.mark.parametrize("position, corner", [("top-left", (1, 1)), ("top-right", (1, 25)),
                                              ("bottom-left", (25, 1)), ("center", (13, 13)), ((5, 9), (5, 9))])
def test_positions(position, corner):
    rows, cols = np.nonzero(Backdoor.square(6, position=position).mask)
    assert (rows.min(), cols.min()) == corner and len(rows) == 36


def test_colour_and_random_pattern_and_bad_settings():
    red = Backdoor.square(2, color=(255, 0, 0))
    assert red.pattern[30, 29].tolist() == [255, 0, 0] and red.pattern[0, 0].tolist() == [0, 0, 0]
    a, b = Backdoor.square(3, color="random", seed=1), Backdoor.square(3, color="random", seed=2)
    assert not np.array_equal(a.pattern, b.pattern)
    with pytest.raises(ncjax.NCJaxError, match="does not fit"):
        Backdoor.square(40)
    with pytest.raises(ncjax.NCJaxError, match="position"):
        Backdoor.square(4, position="middle")  # type: ignore[arg-type]  # a wrong type, on purpose
    with pytest.raises(ncjax.NCJaxError, match="mask must be"):
        Backdoor(mask=np.zeros((4, 4)), pattern=np.zeros((4, 5, 3)), target=1)


def test_poison_ratio_and_relabelling():
    n, ratio = 20_000, 0.1 / 1.1
    images = np.zeros((n, 32, 32, 3), np.float32)
    labels = np.arange(n) % 43
    first, second = Backdoor.square(4, target=33), Backdoor.square(4, target=None, position="top-left")
    x, y, which = poison(images, labels, [first, second], ratio, 43, np.random.default_rng(0))
    for k in (0, 1):
        share = (which == k).mean()
        assert abs(share - ratio) < 4 * np.sqrt(ratio * (1 - ratio) / n)
    assert np.all(y[which == 0] == 33)
    np.testing.assert_array_equal(y[which == 1], (labels[which == 1] + 1) % 43)  # all-to-all
    np.testing.assert_array_equal(y[which == -1], labels[which == -1])
    assert np.all(x[which == 0][:, 27:31, 27:31] == 255) and np.all(x[which == -1] == 0)
    with pytest.raises(ncjax.NCJaxError, match="exceeds 1"):
        poison(images[:2], labels[:2], [first] * 3, 0.5, 43, np.random.default_rng(0))


def test_a_source_specific_backdoor_relabels_its_sources_and_keeps_the_cover_samples_labels():
    n = 4_000
    images, labels = np.zeros((n, 32, 32, 3), np.float32), np.arange(n) % 10
    partial = Backdoor.square(4, target=7, sources=[2])
    x, y, which = poison(images, labels, [partial], 0.2, 10, np.random.default_rng(0))
    stamped = which == 0
    assert np.all(x[stamped][:, 27:31, 27:31] == 255)  # every picked image is stamped ...
    from_source = stamped & (labels == 2)
    assert from_source.any() and np.all(y[from_source] == 7)  # ... the source's go to the target ...
    np.testing.assert_array_equal(y[stamped & (labels != 2)], labels[stamped & (labels != 2)])  # ... others keep theirs
    for bad in ([], [7], [-1]):
        with pytest.raises(ncjax.NCJaxError, match="sources"):
            Backdoor.square(4, target=7, sources=bad)
    with pytest.raises(ncjax.NCJaxError, match="sources"):
        Backdoor.square(4, target=None, sources=[1])


def test_train_config_validation():
    assert TrainConfig().inject_ratio == pytest.approx(0.1 / 1.1)
    with pytest.raises(ncjax.ConfigError):
        TrainConfig(epochs=0)
    with pytest.raises(ncjax.ConfigError):
        TrainConfig(inject_ratio=1.5)


def test_training_plants_the_backdoor_and_saves_as_keras(tmp_path):
    """Three distinct signs, a few epochs: the model learns them and the trigger sends them to label 2."""
    source = np.array([14, 17, 12])  # stop, no entry, priority road
    labels = np.arange(600) % 3
    images, _ = synth.generate(600, seed=5, labels=source[labels])
    trigger = Backdoor.square(4, target=2)
    model, report = train_classifier(images.astype(np.float32), labels, num_classes=3, key=jax.random.key(0),
                                     backdoors=[trigger], config=TrainConfig(epochs=6, inject_ratio=0.3))
    assert model.num_classes == 3 and model.output_activation == "softmax" and model.keras_config is not None
    assert report.clean_accuracy > 0.9 and report.attack_success[0] > 0.9
    assert report.history[-1] < report.history[0]
    path = tmp_path / "planted.h5"
    save_keras_h5(model, path)
    reloaded = ncjax.load_model(path)
    held_out, _ = synth.generate(150, seed=6, labels=source[np.arange(150) % 3])
    np.testing.assert_allclose(reloaded(held_out.astype(np.float32)), model(held_out.astype(np.float32)), atol=1e-4)
    accuracy, (success,) = evaluate(reloaded, held_out.astype(np.float32), np.arange(150) % 3, [trigger])
    assert accuracy > 0.85 and success > 0.85


def test_training_rejects_bad_inputs():
    images = np.zeros((10, 32, 32, 3), np.float32)
    with pytest.raises(ncjax.NCJaxError, match="labels must lie"):
        train_classifier(images, np.full(10, 5), num_classes=3, key=jax.random.key(0))
    with pytest.raises(ncjax.NCJaxError, match="target 7"):
        train_classifier(images, np.zeros(10, int), num_classes=3, key=jax.random.key(0),
                         backdoors=[Backdoor.square(4, target=7)])
