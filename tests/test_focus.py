"""The focused search: after a warm-up only the candidates and anchors search on; the rest keep their best trigger
so far, and a focused scan's searches are those of a plain scan cut where the focus froze them."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images
from ncjax.errors import ConfigError
from ncjax.scan.focus import (
    FocusChoice,
    FocusSummary,
    anchor_slots,
    best_so_far,
    choose_focus,
    slots_to_freeze,
    summarize_focus,
)

# Every label of this tiny model reaches the threshold within the 3-epoch warm-up (checked below).
PLAIN = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=12, patience=1, early_stop_patience=3,
                         attack_success_threshold=0.5, learning_rate=0.3, restarts=2)
FOCUS = dict(warmup_epochs=3, candidates=2, anchors=1)


@pytest.fixture(scope="module")
def tiny8():
    return tiny_classifier(num_classes=8, seed=1), tiny_images()


@pytest.fixture(scope="module")
def scans(tiny8):
    model, images = tiny8
    plain = ncjax.scan_all_labels(model, images, config=PLAIN, key=jax.random.key(0))
    focused = ncjax.scan_all_labels(model, images, config=PLAIN.replace(**FOCUS), key=jax.random.key(0))
    cut = ncjax.scan_all_labels(model, images, config=PLAIN.replace(max_epochs=3), key=jax.random.key(0))
    return plain, focused, cut


def test_choose_focus_takes_the_smallest_and_the_nearest_the_median():
    norms = {0: 50.0, 1: 10.0, 2: 40.0, 3: np.inf, 4: 12.0, 5: 60.0, 6: 45.0}
    choice = choose_focus(norms, candidates=2, anchors=2)
    assert choice.candidates == (1, 4)
    # Reached norms 10, 12, 40, 45, 50, 60: median 42.5; nearest in ratio are 45 (label 6), then 40 (label 2).
    assert choice.anchors == (6, 2) and choice.kept == {1, 4, 2, 6}
    assert choose_focus(norms, candidates=2, anchors=0) == FocusChoice((1, 4), ())
    assert choose_focus({0: np.inf, 1: 5.0}, candidates=3, anchors=1) == FocusChoice((1,), ())


def test_a_label_not_yet_reached_is_not_frozen():
    inf, nan = np.inf, np.nan
    # Slots of labels 0, 1, 2, 3; epochs 0-2 are the warm-up. Label 3 reaches only at epoch 3.
    logs = np.asarray([[inf, 5.0, 4.0, 4.0], [inf, 30.0, 20.0, 20.0], [inf, inf, 25.0, nan], [inf, inf, inf, 40.0]])
    targets = np.asarray([0, 1, 2, 3])
    frozen = slots_to_freeze(targets, logs[:, :3], warmup_epochs=3, candidates=1, anchors=0, searching=[0, 1, 3])
    assert frozen == [1]  # 0 is the candidate, 3 has no trigger yet (2 is not searching)
    later = slots_to_freeze(targets, logs, warmup_epochs=3, candidates=1, anchors=0, searching=[0, 3])
    assert later == [3]


def test_an_anchor_goes_on_from_its_best_start_only():
    inf = np.inf
    # Two starts each of labels 0..4 (label-major); warm-up norms per label 5, 20, 30, 40, 90.
    logs = np.asarray([[5.0], [6.0], [25.0], [20.0], [30.0], [31.0], [40.0], [41.0], [inf], [90.0]])
    targets = np.repeat(np.arange(5), 2)
    frozen = slots_to_freeze(targets, logs, warmup_epochs=1, candidates=1, anchors=1, searching=list(range(10)))
    # Candidate 0 keeps both starts; the anchor (median 30: label 2) keeps its start 4; the rest are frozen.
    assert frozen == [2, 3, 5, 6, 7, 8, 9]


def _went_on(focused, focus):
    """Slot positions that searched past the warm-up: every start of a candidate, an anchor's best start."""
    warm = best_so_far(np.asarray(focused.logs.reg_best), 3)
    anchors = anchor_slots(focused.labels, warm, focus.labels_with("anchor"))
    return np.isin(focused.labels, focus.labels_with("candidate")) | np.isin(np.arange(len(focused.labels)),
                                                                            list(anchors.values()))


def test_candidates_and_anchors_search_as_in_a_plain_scan(scans):
    plain, focused, _ = scans
    focus = summarize_focus(focused)
    assert focus is not None and np.isfinite(focus.warmup_norms).all()  # the premise: all reached in the warm-up
    assert len(focus.labels_with("candidate")) == 2 and len(focus.labels_with("anchor")) == 1
    kept = _went_on(focused, focus)
    assert kept.sum() == 2 * 2 + 1  # both starts of each candidate, one of the anchor
    np.testing.assert_allclose(focused.masks[kept], plain.masks[kept], atol=1e-5)
    np.testing.assert_array_equal(focused.epochs[kept], plain.epochs[kept])
    assert focused.label_steps < plain.label_steps


def test_frozen_searches_keep_their_best_trigger_of_the_warm_up(scans):
    _, focused, cut = scans
    focus = summarize_focus(focused)
    frozen = ~_went_on(focused, focus)
    assert frozen.sum() == 2 * 8 - (2 * 2 + 1)
    assert (focused.epochs[frozen] == 3).all() and not focused.early_stopped[frozen].any()
    np.testing.assert_allclose(focused.masks[frozen], cut.masks[frozen], atol=1e-5)
    assert (focus.epochs[np.isin(focus.labels, focus.labels_with("frozen"))] == 3).all()


def test_the_summary_scales_frozen_norms_by_the_anchors_shrinking(scans):
    _, focused, _ = scans
    focus = summarize_focus(focused)
    anchor = focus.labels_with("anchor")[0]
    slot = int(np.flatnonzero(_went_on(focused, focus) & (focused.labels == anchor))[0])
    final = best_so_far(np.asarray(focused.logs.reg_best))[slot]
    i = list(focus.labels).index(anchor)
    assert focus.shrink == pytest.approx(max(focus.warmup_norms[i] / final, 1.0))
    norms = np.arange(1.0, 9.0)
    scaled = focus.scaled_norms(focus.labels, norms)
    frozen = np.isin(focus.labels, focus.labels_with("frozen"))
    np.testing.assert_allclose(scaled[frozen], norms[frozen] / focus.shrink)
    np.testing.assert_array_equal(scaled[~frozen], norms[~frozen])
    assert summarize_focus(scans[0]) is None  # a plain scan has no focus


def test_a_focused_scan_resumes_after_the_freeze(tiny8, scans, tmp_path):
    model, images = tiny8
    path, calls = tmp_path / "scan.npz", []

    def interrupt(progress):
        calls.append(progress)
        if len(calls) == 5:  # two epochs after the freeze
            raise KeyboardInterrupt

    config = PLAIN.replace(**FOCUS)
    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, callback=interrupt)
    assert len(calls[-1].active_labels) < len(calls[0].active_labels)
    resumed = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, resume=True)
    whole = scans[1]
    np.testing.assert_array_equal(resumed.masks, whole.masks)
    np.testing.assert_array_equal(resumed.epochs, whole.epochs)
    assert resumed.label_steps == whole.label_steps


def test_a_scan_split_in_chunks_warns_and_searches_every_label_whole(tiny8, scans):
    model, images = tiny8
    with pytest.warns(UserWarning, match="one chunk"):
        chunked = ncjax.scan_all_labels(model, images, labels=[0, 1, 2], config=PLAIN.replace(**FOCUS, label_chunk=2),
                                        key=jax.random.key(0))
    np.testing.assert_array_equal(chunked.epochs, scans[0].epochs[:6])


@pytest.mark.parametrize("changes, says", [
    (dict(warmup_epochs=12), "below max_epochs"), (dict(warmup_epochs=0), "warmup_epochs"),
    (dict(candidates=0), "candidates"), (dict(anchors=-1), "anchors"), (dict(check_epochs=0), "check_epochs"),
])
def test_focus_settings_are_checked(changes, says):
    with pytest.raises(ConfigError, match=says):
        PLAIN.replace(**changes)


def test_a_focused_preset_shorter_than_its_warm_up_searches_unfocused():
    assert ncjax.ScanConfig.focused(max_epochs=10).warmup_epochs is None
    assert ncjax.ScanConfig.focused(max_epochs=11).warmup_epochs == 10
    with pytest.raises(ConfigError, match="below max_epochs"):
        ncjax.ScanConfig.focused(max_epochs=5, warmup_epochs=5)  # asked for explicitly: an error, not a change


def test_the_source_check_runs_unfocused_with_its_own_epochs():
    check = ncjax.ScanConfig.focused().source_check()
    assert (check.warmup_epochs, check.restarts, check.max_epochs) == (None, 1, 30)
    assert ncjax.ScanConfig.fast().source_check().max_epochs == 30


def test_the_pipeline_scores_scaled_norms_and_reports_the_focus(tiny8, tmp_path):
    model, images = tiny8
    outcome = ncjax.scan_model(model, images, key=jax.random.key(0), config=PLAIN.replace(**FOCUS), force=True,
                               decision=ncjax.DecisionConfig(source_check=0), out=tmp_path)
    focus = outcome.focus
    assert focus is not None and focus.shrink >= 1
    raw = ncjax.l1_norms(outcome.result.masks, quantize=True)
    np.testing.assert_allclose(outcome.verdict.mad.norms, focus.scaled_norms(outcome.result.labels, raw))
    report = json.loads((tmp_path / "report.json").read_text())["focus"]
    assert report["warmup_epochs"] == 3 and report["shrink"] == pytest.approx(focus.shrink)
    assert [row["role"] for row in report["labels"]] == list(focus.roles)
    assert "frozen after the 3-epoch warm-up" in report["line"]


def test_the_summary_marks_frozen_labels():
    from ncjax.pipeline.summary import summary_image

    verdict = ncjax.decide([100.0 + i for i in range(8)])
    masks, patterns = np.zeros((8, 6, 6)), np.zeros((8, 6, 6, 3))
    plain = np.asarray(summary_image(masks, patterns, verdict))
    starred = np.asarray(summary_image(masks, patterns, verdict, frozen=[2, 5]))
    assert plain.shape == starred.shape and (plain != starred).any()


def test_the_focus_line_names_its_candidates_or_says_there_were_none():
    inf = np.inf
    some = FocusSummary(10, np.array([0, 1, 2]), ("candidate", "frozen", "unranked"), np.array([40, 10, 25]),
                        np.array([5.0, 9.0, inf]), np.array([3.0, 9.0, 7.0]), 1.5)
    assert some.line().startswith("focused search: label 0 searched on (up to 40 epochs); 1 label frozen after")
    assert some.line().endswith("1 reached no trigger in the warm-up and searched on until they did")
    none = FocusSummary(1, np.array([0, 1]), ("unranked", "unranked"), np.array([2, 2]), np.array([inf, inf]),
                        np.array([inf, inf]), 1.0)
    assert none.line().startswith("focused search: no ranked label searched on (up to 2 epochs); 0 labels frozen")
