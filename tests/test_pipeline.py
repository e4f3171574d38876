"""ncjax.scan_model: the command line's whole scan as a library call, its events, and its settings."""
from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
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
                                 dict(quantize="yes"), dict(pairs="all"), dict(min_asymmetry=1.0)])
def test_bad_decision_settings_are_refused_with_the_field_named(bad):
    with pytest.raises(ncjax.ConfigError, match=f"DecisionConfig.{next(iter(bad))}"):
        ncjax.DecisionConfig(**bad)


def _quadrant_classifier() -> ncjax.Classifier:
    """Class k is the brightest quadrant k: every label is reachable by a patch in its quadrant."""
    def apply(params, x):
        quadrants = [x[:, r:r + 3, c:c + 3].mean(axis=(1, 2, 3)) for r in (0, 3) for c in (0, 3)]
        return params["scale"] * jnp.stack(quadrants, axis=1)

    return ncjax.Classifier(apply=apply, params={"scale": jnp.float32(1.0)}, input_shape=(6, 6, 3), num_classes=4,
                            output_activation="linear")


def test_the_pair_scan_runs_where_labels_are_few_and_its_score_reaches_the_verdict_and_report(tmp_path):
    model, images = _quadrant_classifier(), tiny_images()
    labels = np.asarray(model.apply(model.params, jnp.asarray(images))).argmax(1)
    config = CONFIG.replace(max_epochs=6, pair_epochs=2)
    events = []
    outcome = ncjax.scan_model(model, images, labels, key=jax.random.key(0), config=config,
                               out=tmp_path / "out", callback=events.append,
                               decision=ncjax.DecisionConfig(source_check=0, min_asymmetry=1.01, min_ratio=100.0,
                                                             pairs="auto"))
    assert outcome.pairs is not None and outcome.pairs.pairs == 12 and outcome.pairs.epochs.max() <= 2
    assert [e.pair_classes for e in events if e.pair_classes] == [4]
    assert outcome.verdict.pairs is not None
    report = outcome.report["pairs"]
    assert report["classes"] == [0, 1, 2, 3] and len(report["asymmetry"]) == 4
    assert {(f["source"], f["target"]) for f in report["flagged"]} == {
        (f.source, f.target) for f in outcome.verdict.pairs.flagged}
    # At a threshold just above 1 some pair is flagged; with a score that names nothing, the scan is suspicious of
    # its target, and the pair's pictures are written.
    flagged = outcome.verdict.pairs.flagged
    assert flagged and outcome.verdict.status == "suspicious"
    assert set(outcome.verdict.pairs.targets) <= set(outcome.verdict.labels)
    assert (tmp_path / "out" / f"gtsrb_pair_{flagged[0].source}_to_{flagged[0].target}_fusion.png").exists()
    assert (tmp_path / "out" / "pair_scan_state.npz").exists()
    unlabelled = ncjax.scan_model(model, images, key=jax.random.key(0), config=config,
                                  decision=ncjax.DecisionConfig(pairs="auto"))
    assert unlabelled.pairs is None and unlabelled.report["pairs"] is None
    by_default = ncjax.scan_model(model, images, labels, key=jax.random.key(0), config=config)
    assert by_default.pairs is None and by_default.verdict.pairs is None


def test_a_pair_scan_asked_for_but_impossible_is_refused_before_scanning():
    model, images = tiny_classifier(), tiny_images()
    events = []
    with pytest.raises(ncjax.UsageError, match="--pairs"):
        ncjax.scan_model(model, images, key=jax.random.key(0), config=CONFIG, force=True, callback=events.append,
                         decision=ncjax.DecisionConfig(pairs="on"))
    assert [e.stage for e in events] == ["preflight"]
    off = ncjax.scan_model(model, images, np.arange(len(images)) % 4, key=jax.random.key(0), config=CONFIG,
                           force=True, decision=ncjax.DecisionConfig(pairs="off", source_check=0))
    assert off.pairs is None


def test_a_used_output_folder_is_refused_in_the_callers_own_terms(tmp_path):
    (tmp_path / "report.json").write_text("{}")  # another scan's file
    with pytest.raises(ncjax.UsageError, match=r"resume it \(resume=True\), replace it \(overwrite=True"):
        ncjax.scan_model(tiny_classifier(), tiny_images(), key=jax.random.key(0), config=ncjax.ScanConfig.fast(),
                         out=tmp_path)
    assert (tmp_path / "report.json").read_text() == "{}"


def test_the_combined_rule_runs_the_margin_search_and_reports_it_beside_the_triggers(tmp_path):
    import json

    model, images = tiny_classifier(), tiny_images()
    events = []
    outcome = ncjax.scan_model(model, images, key=jax.random.key(0), config=CONFIG, force=True, out=tmp_path / "out",
                               decision=ncjax.DecisionConfig(rule="combined", source_check=0), callback=events.append)
    verdict, margins = outcome.verdict, outcome.margins
    assert verdict.rule == "combined" and verdict.margin is not None and margins is not None
    assert margins.labels.tolist() == list(range(model.num_classes)) and "maximum margin: label" in verdict.line()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["margins"]["margins"] == pytest.approx(margins.margins.tolist())
    assert report["margins"]["p_value"] == pytest.approx(verdict.margin.p_value)
    assert (tmp_path / "out" / "margin_scan_state.npz").exists()
    assert [e.margin for e in events if e.margin is not None] == [verdict.margin]
    plain = ncjax.scan_model(model, images, key=jax.random.key(0), config=CONFIG, force=True,
                             decision=ncjax.DecisionConfig(source_check=0))
    assert plain.margins is None and plain.report["margins"] is None and plain.verdict.margin is None
