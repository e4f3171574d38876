"""The three defenses on the embedded demo (a real planted backdoor): unlearning and pruning lower the trigger's
attack success while clean accuracy holds; the filter flags stamped images at its chosen false-positive rate."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from ncjax.lab import Backdoor
from ncjax.mitigation import load_filter
from ncjax.mitigation.measure import split_images

# Few steps at the reference's rate: enough on 200 training images (the default does 100 steps).
QUICK = dict(min_steps=30)


def test_the_split_holds_apart_part_of_every_class_and_shares_nothing():
    labels = np.repeat(np.arange(5), [2, 3, 10, 1, 40])
    split = split_images(labels, 0.5, seed=0)
    assert not set(split.train) & set(split.holdout)
    assert sorted([*split.train, *split.holdout]) == list(range(len(labels)))
    for label in (0, 1, 2, 4):  # classes of two or more images are on both sides
        assert np.any(labels[split.holdout] == label) and np.any(labels[split.train] == label)
    assert np.array_equal(split.holdout, split_images(labels, 0.5, seed=0).holdout)


def test_unlearning_removes_the_planted_trigger_and_keeps_clean_accuracy(demo_backdoor):
    model, images, labels, square = demo_backdoor
    result = ncjax.mitigate(model, images, labels, square, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(**QUICK), true_trigger=square)
    assert result.before.attack_success[33] > 0.9 and result.after.attack_success[33] < 0.1
    assert result.after.true_attack_success == result.after.attack_success
    assert result.after.clean_accuracy > result.before.clean_accuracy - 0.06
    assert result.unlearn.steps >= 30 and result.unlearn.stamped == round(0.2 * result.train_images)
    assert result.train_images + result.holdout_images == len(images)
    # Only the copy changed: the model given keeps its params.
    assert not np.array_equal(np.asarray(result.model.params["dense"]["kernel"]),
                              np.asarray(model.params["dense"]["kernel"]))
    again = ncjax.mitigate(model, images, labels, square, key=jax.random.key(0), config=ncjax.MitigationConfig(**QUICK))
    assert again.after.attack_success == result.after.attack_success  # same key, same result


def test_unlearning_with_a_trigger_the_model_ignores_changes_little(demo_backdoor):
    model, images, labels, square = demo_backdoor
    corner = Backdoor.square(4, target=5, position="top-left")
    other = ncjax.TriggerSet([5], corner.mask[None], corner.pattern[None])
    result = ncjax.mitigate(model, images, labels, other, key=jax.random.key(1), config=ncjax.MitigationConfig(**QUICK),
                            true_trigger=square)
    assert result.before.attack_success[5] < 0.1
    assert result.after.true_attack_success[33] > 0.8  # removing another trigger leaves the real one


def test_pruning_stops_once_the_trigger_fails_and_reports_every_step(demo_backdoor):
    model, images, labels, square = demo_backdoor
    result = ncjax.mitigate(model, images, labels, square, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(method="prune", prune_step=0.1))
    curve = result.prune
    assert curve.stop == "target reached" and curve.pruned[0] == 0
    assert list(curve.pruned) == sorted(curve.pruned) and curve.pruned[1] == 52
    assert result.after is curve.steps[curve.chosen] and result.after.attack_success[33] <= 0.05
    assert curve.steps[0].attack_success[33] > 0.9
    assert result.after.clean_accuracy >= result.before.clean_accuracy - 0.05
    pruned_units = list(curve.order[:curve.pruned[curve.chosen]])
    kernel = np.asarray(result.model.params["dense"]["kernel"])
    assert not kernel[:, pruned_units].any() and kernel[:, list(curve.order[-5:])].any()


def test_pruning_never_keeps_a_step_past_the_accuracy_limit(demo_backdoor):
    model, images, labels, square = demo_backdoor
    result = ncjax.mitigate(model, images, labels, square, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(method="prune", prune_step=0.5, max_accuracy_drop=0.0,
                                                          target_attack_success=0.0))
    curve = result.prune
    assert curve.stop in ("accuracy limit", "target reached", "layer exhausted")
    assert result.after.clean_accuracy >= result.before.clean_accuracy
    if curve.stop == "accuracy limit":
        assert curve.chosen == len(curve.steps) - 2


def test_the_filter_flags_stamped_images_at_its_false_positive_rate(demo_backdoor, tmp_path):
    model, images, labels, square = demo_backdoor
    result = ncjax.mitigate(model, images, labels, square, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(method="filter"), true_trigger=square)
    rates, input_filter = result.filter_rates, result.input_filter
    assert result.model is model and len(rates.neurons[33]) == 5  # 1 % of 512
    assert rates.false_positive_rate <= 0.12 and rates.caught[33] > 0.9
    assert result.after.attack_success[33] < 0.1
    stamped = square.stamp(images[:20], 0, ncjax.Preprocessing())
    assert input_filter.flags(stamped).mean() > 0.8
    input_filter.save(tmp_path / "filter.npz")
    again = load_filter(tmp_path / "filter.npz", model)
    np.testing.assert_allclose(again.score(stamped), input_filter.score(stamped), rtol=1e-6)
    assert again.threshold == input_filter.threshold


def test_the_filter_keeps_one_neuron_group_per_trigger_and_catches_each(demo_backdoor):
    """Two triggers of different strength: a single ranking would give all neurons to the stronger one."""
    model, images, labels, square = demo_backdoor
    corner = Backdoor.square(6, target=5, position="top-left", color=(255.0, 0.0, 0.0))
    both = ncjax.TriggerSet([33, 5], np.stack([square.masks[0], corner.mask]),
                            np.stack([square.patterns[0], corner.pattern]))
    result = ncjax.mitigate(model, images, labels, both, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(method="filter", filter_neurons=0.02))
    groups = result.filter_rates.neurons
    assert set(groups) == {33, 5} and all(len(g) == 10 for g in groups.values()) and groups[33] != groups[5]
    assert len(result.input_filter.groups) == 2 and result.filter_rates.caught[33] > 0.9


@pytest.mark.parametrize("bad, match", [
    (dict(labels=None), "true label"),
    (dict(images=np.zeros((10, 8, 8, 3))), "images must be"),
    (dict(labels=np.full(400, 43)), "labels must be"),
    (dict(triggers=ncjax.TriggerSet([3], np.zeros((1, 8, 8)), np.zeros((1, 8, 8, 3)))), "another model"),
    (dict(triggers=ncjax.TriggerSet([50], np.zeros((1, 32, 32)), np.zeros((1, 32, 32, 3)))), "does not have"),
])
def test_inputs_that_do_not_fit_are_refused_before_any_work(demo_backdoor, bad, match):
    model, images, labels, square = demo_backdoor
    given = dict(images=images, labels=labels, triggers=square) | bad
    with pytest.raises(ncjax.MitigationError, match=match):
        ncjax.mitigate(model, given["images"], given["labels"], given["triggers"], key=jax.random.key(0))


def test_progress_is_reported_after_every_step(demo_backdoor):
    model, images, labels, square = demo_backdoor
    seen = []
    result = ncjax.mitigate(model, images[:100], labels[:100], square, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(min_steps=4, batch_size=25), callback=seen.append)
    assert [p.done for p in seen] == list(range(1, result.unlearn.steps + 1))
    assert {p.total for p in seen} == {result.unlearn.steps} and seen[0].stage == "fine-tuning steps"


def test_an_onnx_model_is_fine_tuned_in_its_weights_only(tmp_path):
    pytest.importorskip("onnx")
    from conftest import ROOT

    model = ncjax.load_model(ROOT / "tests" / "fixtures" / "onnx" / "dynamo_flatten.onnx")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (60, 16, 16, 3)).astype(np.float32)
    labels = np.asarray(model(images)).argmax(axis=1)  # what the model says: a consistent labelling
    labels[:3] = np.arange(3)  # at least two classes
    corner = Backdoor.square(3, target=1, image_shape=(16, 16, 3))
    trigger = ncjax.TriggerSet([1], corner.mask[None], corner.pattern[None])
    result = ncjax.mitigate(model, images, labels, trigger, key=jax.random.key(0),
                            config=ncjax.MitigationConfig(min_steps=5, batch_size=10))
    assert float(result.model.params["val_1"]) == float(model.params["val_1"])
    assert not np.array_equal(np.asarray(result.model.params["fc1.weight"]), np.asarray(model.params["fc1.weight"]))
    ncjax.save_model(result.model, tmp_path / "repaired.onnx")
    np.testing.assert_allclose(np.asarray(ncjax.load_model(tmp_path / "repaired.onnx")(images)),
                               np.asarray(result.model(images)), rtol=1e-5, atol=1e-5)


def test_filter_files_that_are_not_ours_are_refused(demo_backdoor, tmp_path):
    model = demo_backdoor[0]
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ncjax.MitigationError, match="not an ncjax filter file"):
        load_filter(tmp_path / "other.npz", model)
    meta = np.asarray('{"format": "ncjax-filter-2", "layer": "dense", "threshold": 1.0}')
    np.savez(tmp_path / "uneven.npz", neurons=np.arange(5), sizes=np.asarray([2, 2]), centers=np.zeros(2),
             scales=np.ones(2), meta=meta)
    with pytest.raises(ncjax.MitigationError, match="do not add up"):
        load_filter(tmp_path / "uneven.npz", model)
    np.savez(tmp_path / "outside.npz", neurons=np.asarray([600]), sizes=np.asarray([1]), centers=np.zeros(1),
             scales=np.ones(1), meta=meta)
    with pytest.raises(ncjax.MitigationError, match=r"\[0, 512\)"):
        load_filter(tmp_path / "outside.npz", model)
