"""Logits in batches for the pre-flight check and --preprocess auto: batches sized to the model's activations."""
from __future__ import annotations

from types import SimpleNamespace

from ncjax.data.accuracy import FORWARD_BYTES, MAX_BATCH, forward_batch
from ncjax.models.classifier import LayerSummary


def _model(*shapes):
    layers = tuple(LayerSummary(f"l{i}", "Conv2D", (None, *shape), 0, 0) for i, shape in enumerate(shapes))
    return SimpleNamespace(layers=layers)


def test_small_models_get_full_batches_and_large_feature_maps_smaller_ones():
    assert forward_batch(_model((32, 32, 64), (10,))) == MAX_BATCH
    big = _model((1024, 1024, 32), (1024, 1024, 32))  # 256 MiB of activations per image
    assert forward_batch(big) == FORWARD_BYTES // (4 * 2 * 1024 * 1024 * 32) == 4
    assert forward_batch(_model((8192, 8192, 16))) == 1  # never below one image
    assert forward_batch(SimpleNamespace()) == MAX_BATCH  # a model without a layer table
