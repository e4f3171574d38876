"""Classifier: any pure apply function with params is scannable; its summary reads like Keras'."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import ncjax
from ncjax.models.classifier import LayerSummary


def _linear_classifier():
    params = {"dense": {"kernel": jnp.ones((12, 3)), "bias": jnp.arange(3.0)}}
    return ncjax.Classifier(
        apply=lambda p, x: x.reshape(x.shape[0], -1) @ p["dense"]["kernel"] + p["dense"]["bias"],
        params=params, input_shape=(2, 2, 3), num_classes=3, output_activation="linear",
        layers=(LayerSummary("dense", "Dense", (None, 3), 39, 0),),
    )


def test_call_is_apply_with_own_params():
    classifier = _linear_classifier()
    x = np.ones((4, 2, 2, 3), np.float32)
    np.testing.assert_allclose(classifier(x), classifier.apply(classifier.params, x))
    np.testing.assert_allclose(classifier(x)[0], [12.0, 13.0, 14.0])
    assert classifier.param_count == 39


def test_summary_has_table_and_facts():
    text = _linear_classifier().summary()
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "class", "output", "shape", "params"]
    assert any(line.split()[:2] == ["dense", "Dense"] and line.endswith("39") for line in lines)
    assert "input shape: (2, 2, 3)" in text and "classes: 3" in text and "output activation: linear" in text
