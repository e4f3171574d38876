"""The embedded demo models: what models.json says holds, and the scan finds the planted backdoor."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

import ncjax
from ncjax import demo
from ncjax.lab.inject import Backdoor, evaluate
from ncjax.verdict.decision import decide
from ncjax.verdict.outlier import l1_norms, mad_outliers

REPORT = json.loads((demo.HERE / "models.json").read_text())


@pytest.mark.parametrize("infected", [True, False])
def test_demo_models_reproduce_their_recorded_quality(infected):
    """The committed files, read back by ncjax and evaluated on the held-out set make_demo_models.py used, give
    the accuracy and trigger success models.json records (a few images may flip on another CPU)."""
    model = demo.demo_model(infected=infected)
    assert model.input_shape == (32, 32, 3) and model.num_classes == 43 and model.output_activation == "softmax"
    images, labels = demo.demo_images(REPORT["heldout_images"], seed=demo.HELDOUT_SEED)
    accuracy, (success,) = evaluate(model, images, labels, [Backdoor.square(4, target=demo.TARGET)])
    recorded = REPORT["models"][demo.demo_model_path(infected=infected).name]
    assert accuracy == pytest.approx(recorded["clean_accuracy"], abs=0.003)
    assert success == pytest.approx(recorded["trigger_to_target"], abs=0.003)
    assert accuracy >= 0.95
    assert success >= 0.95 if infected else success <= 0.05


def test_demo_files_are_small():
    total = sum(os.path.getsize(demo.HERE / name) for name in os.listdir(demo.HERE))
    assert total < 6 * 2**20


# Every tenth label and the target: a seventh of the full scan's time (about 35 s on a 2-core CPU), so that make
# test stays under 10 minutes; the full scan is the slow test below. A label's search does not depend on which
# others run beside it, so the target is smallest in any subset that holds it; the score's median is this subset's.
SOME_LABELS = sorted({0, 20, demo.TARGET, 40})


def test_fast_scan_ranks_33_first_on_the_demo_backdoor():
    images, _ = demo.demo_images()
    result = ncjax.scan_all_labels(demo.demo_model(), images, labels=SOME_LABELS, config=ncjax.ScanConfig.fast(),
                                   key=jax.random.key(0))
    assert int(result.labels[np.argmin(result.l1_norms)]) == demo.TARGET
    verdict = decide(l1_norms(result.masks, quantize=True), result.labels)
    assert verdict.infected and verdict.labels == (demo.TARGET,)


@pytest.mark.slow
def test_fast_scan_of_every_label_flags_33_on_the_demo_backdoor():
    """All 43 labels, fast preset: about 3.5 minutes on a 2-core CPU."""
    images, _ = demo.demo_images()
    result = ncjax.scan_all_labels(demo.demo_model(), images, config=ncjax.ScanConfig.fast(), key=jax.random.key(0))
    assert int(result.labels[np.argmin(result.l1_norms)]) == demo.TARGET
    verdict = decide(l1_norms(result.masks, quantize=True), result.labels)
    assert verdict.infected and verdict.labels == (demo.TARGET,)


@pytest.mark.slow
def test_fast_scan_flags_nothing_on_the_clean_twin():
    images, _ = demo.demo_images()
    result = ncjax.scan_all_labels(demo.demo_model(infected=False), images, config=ncjax.ScanConfig.fast(),
                                   key=jax.random.key(0))
    assert mad_outliers(result.l1_norms, result.labels).flagged == ()
