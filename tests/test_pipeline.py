"""ncjax.scan_model: the command line's whole scan as a library call, its events, and its settings."""
from __future__ import annotations

import threading

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images

CONFIG = ncjax.ScanConfig.fast(batch_size=8, nb_sample=16, max_epochs=3, patience=1)


def test_a_scan_from_another_thread_reports_its_stages_and_writes_nothing_without_an_output_folder(tmp_path,
                                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, images = tiny_classifier(), tiny_images()
    labels = np.arange(len(images)) % model.num_classes
    events, outcomes = [], []
    worker = threading.Thread(target=lambda: outcomes.append(ncjax.scan_model(
        model, images, labels, key=jax.random.key(0), config=CONFIG, force=True, callback=events.append)))
    worker.start()
    worker.join()
    outcome = outcomes[0]
    assert [e.stage for e in events[:2]] == ["preflight", "scan"] and events[0].preflight is outcome.preflight
    assert any(e.progress is not None for e in events) and outcome.report["verdict"] == outcome.verdict.status
    assert len(outcome.result.labels) == model.num_classes and not list(tmp_path.iterdir())


def test_the_outputs_and_a_resumed_scan_match_a_direct_one(tmp_path):
    model, images = tiny_classifier(), tiny_images()
    settings = dict(key=jax.random.key(3), config=CONFIG, force=True,
                    decision=ncjax.DecisionConfig(source_check=0))
    direct = ncjax.scan_model(model, images, **settings)
    written = ncjax.scan_model(model, images, out=tmp_path / "out", **settings)
    assert {"report.json", "summary.png", "triggers.npz"} <= {p.name for p in (tmp_path / "out").iterdir()}
    np.testing.assert_array_equal(direct.result.masks, written.result.masks)

    def stop_after_first_epoch(event):
        if event.progress is not None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_model(model, images, out=tmp_path / "again", callback=stop_after_first_epoch, **settings)
    resumed = ncjax.scan_model(model, images, out=tmp_path / "again", resume=True, **settings)
    np.testing.assert_array_equal(direct.result.masks, resumed.result.masks)


def test_a_model_the_images_do_not_suit_is_refused_unless_forced():
    model = tiny_classifier()
    blind = ncjax.Classifier(apply=lambda p, x: model.apply(p, x * 0), params=model.params,
                             input_shape=model.input_shape, num_classes=model.num_classes, output_activation="linear")
    images = tiny_images()
    with pytest.raises(ncjax.PreflightError, match="--force"):
        ncjax.scan_model(blind, images, np.arange(len(images)) % 4, key=jax.random.key(0), config=CONFIG)


@pytest.mark.parametrize("bad", [dict(rule="vote"), dict(threshold=0), dict(min_ratio=1.0), dict(min_gap=0.5),
                                 dict(max_spread=float("nan")), dict(source_check=-1), dict(source_check=True),
                                 dict(quantize="yes")])
def test_bad_decision_settings_are_refused_with_the_field_named(bad):
    with pytest.raises(ncjax.ConfigError, match=f"DecisionConfig.{next(iter(bad))}"):
        ncjax.DecisionConfig(**bad)
