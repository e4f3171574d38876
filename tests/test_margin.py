"""The maximum-margin search (MM-BD) as a search kind of the engine, and its statistic."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier
from ncjax.search.margin import logit_margin

SMALL = ncjax.ScanConfig.margin(batch_size=8, nb_sample=16, max_epochs=6, restarts=2)


def _linear(num_classes=6, shape=(4, 4, 1), strong=3, gain=8.0):
    """logits = W x / 255 + b: label `strong` has `gain` times the others' weights, so its margin can grow far
    beyond theirs (a stand-in for a backdoor's shortcut)."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (int(np.prod(shape)), num_classes)).astype(np.float32)
    w[:, strong] *= gain
    params = {"w": jnp.asarray(w), "b": jnp.zeros(num_classes)}
    apply = lambda p, x: x.reshape(x.shape[0], -1) / 255.0 @ p["w"] + p["b"]
    return ncjax.Classifier(apply=apply, params=params, input_shape=shape, num_classes=num_classes,
                            output_activation="linear")


def test_the_margin_is_the_target_logit_over_the_largest_other():
    logits = jnp.asarray([1.0, 5.0, 3.0])
    assert float(logit_margin(logits, jnp.asarray(1))) == pytest.approx(2.0)
    assert float(logit_margin(logits, jnp.asarray(0))) == pytest.approx(-4.0)


@pytest.fixture(scope="module")
def tiny_margins():
    return ncjax.scan_margins(tiny_classifier(), config=SMALL, key=jax.random.key(0))


def test_each_search_reports_the_margin_its_input_reaches(tiny_margins):
    model, result = tiny_classifier(), tiny_margins
    assert result.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and result.restarts.tolist() == [0, 1] * 4
    assert (result.epochs == SMALL.max_epochs).all()
    assert result.inputs.min() >= 0 and result.inputs.max() <= 255
    logits = np.asarray(model.apply(model.params, jnp.asarray(result.inputs)))
    reached = [float(logit_margin(jnp.asarray(row), jnp.asarray(k))) for row, k in zip(logits, result.labels)]
    np.testing.assert_allclose(reached, result.margins, rtol=1e-4, atol=1e-4)
    best = result.per_label()
    assert best.labels.tolist() == [0, 1, 2, 3]
    assert all(best.margins[i] == result.margins[result.labels == k].max() for i, k in enumerate(best.labels))


def test_the_margin_grows_as_the_search_climbs(tiny_margins):
    logged = tiny_margins.logs.best
    assert np.all(np.diff(logged, axis=1) >= 0)
    np.testing.assert_allclose(logged[:, -1], tiny_margins.margins)
    shorter = ncjax.scan_margins(tiny_classifier(), config=SMALL.replace(max_epochs=2), key=jax.random.key(0))
    assert np.all(tiny_margins.margins >= shorter.margins) and np.any(tiny_margins.margins > shorter.margins)


def test_an_interrupted_margin_scan_resumes_to_the_same_result(tiny_margins, tmp_path):
    path = tmp_path / "margins.npz"

    def stop(progress):
        if progress.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_margins(tiny_classifier(), config=SMALL, key=jax.random.key(0), checkpoint=path, callback=stop)
    resumed = ncjax.scan_margins(tiny_classifier(), config=SMALL, key=jax.random.key(0), checkpoint=path, resume=True)
    np.testing.assert_array_equal(resumed.margins, tiny_margins.margins)
    np.testing.assert_array_equal(resumed.inputs, tiny_margins.inputs)


def test_a_label_with_an_abnormal_margin_is_flagged_and_others_are_not():
    config = SMALL.replace(max_epochs=20, learning_rate=0.1)
    strong = ncjax.scan_margins(_linear(), config=config, key=jax.random.key(1)).per_label()
    score = ncjax.margin_score(strong.margins, strong.labels)
    assert score.top_label == 3 and score.flagged == (3,) and score.p_value < 0.05
    even = ncjax.scan_margins(_linear(gain=1.0), config=config, key=jax.random.key(1)).per_label()
    assert ncjax.margin_score(even.margins, even.labels).flagged == ()


def test_the_statistic_reads_the_largest_margin_against_the_others():
    rng = np.random.default_rng(0)
    bulk = rng.gamma(20.0, 10.0, 42)
    assert ncjax.margin_score(np.append(bulk, bulk.max() * 3)).flagged == (42,)
    plain = ncjax.margin_score(bulk)
    assert plain.flagged == () and plain.p_value > 0.05 and plain.ratio == pytest.approx(bulk.max() / np.median(bulk))
    assert ncjax.margin_score(np.asarray([1.0, 2.0, 50.0])).note is not None
    for bad in ([], [1.0, np.nan, 2.0, 3.0], np.ones((2, 3))):
        with pytest.raises(ncjax.ConfigError):
            ncjax.margin_score(bad)
    with pytest.raises(ncjax.ConfigError, match="max_p"):
        ncjax.margin_score(bulk, max_p=1.5)


def test_each_entry_point_runs_only_its_own_search_kind():
    with pytest.raises(ncjax.ConfigError, match="scan_margins"):
        ncjax.scan_all_labels(tiny_classifier(), np.zeros((8, 6, 6, 3)), config=SMALL, key=jax.random.key(0))
    with pytest.raises(ncjax.ConfigError, match="search='margin'"):
        ncjax.scan_margins(tiny_classifier(), config=ncjax.ScanConfig.fast(), key=jax.random.key(0))
    with pytest.raises(ncjax.ConfigError, match="warmup_epochs"):
        ncjax.ScanConfig.margin(warmup_epochs=2)
    with pytest.raises(ncjax.ConfigError, match="search"):
        ncjax.ScanConfig(search="largest")
