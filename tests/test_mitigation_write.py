"""A repaired model is written in the format it came in and reads back equal."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import ncjax
from conftest import ROOT
from ncjax.mitigation.weights import hidden_layer, prune_units

ONNX = ROOT / "tests" / "fixtures" / "onnx"


def _images(model, n=8):
    return np.random.default_rng(0).uniform(0, 255, (n, *model.input_shape)).astype(np.float32)


def test_a_changed_keras_model_is_written_as_keras_hdf5_and_reads_back_equal(demo_backdoor, tmp_path):
    model = demo_backdoor[0]
    changed = dataclasses.replace(model, params=prune_units(model.params, hidden_layer(model), np.arange(40)))
    ncjax.save_model(changed, tmp_path / "repaired.h5")
    again = ncjax.load_model(tmp_path / "repaired.h5")
    images = _images(model)
    np.testing.assert_array_equal(np.asarray(again(images)), np.asarray(changed(images)))
    assert not np.allclose(np.asarray(again(images)), np.asarray(model(images)))
    assert again.output_activation == "softmax"  # the file's own softmax is written back


def test_a_changed_onnx_model_keeps_its_graph_and_gets_the_new_initializers(tmp_path):
    onnx = pytest.importorskip("onnx")
    source = ONNX / "dynamo_flatten.onnx"
    model = ncjax.load_model(source)
    params = jax.tree_util.tree_map(lambda a: a * 0.5, model.params)
    changed = dataclasses.replace(model, params=params)
    ncjax.save_model(changed, tmp_path / "repaired.onnx")
    again = ncjax.load_model(tmp_path / "repaired.onnx")
    images = _images(model)
    np.testing.assert_allclose(np.asarray(again(images)), np.asarray(changed(images)), rtol=1e-6, atol=1e-6)
    written, original = onnx.load(str(tmp_path / "repaired.onnx")), onnx.load(str(source))
    assert [n.op_type for n in written.graph.node] == [n.op_type for n in original.graph.node]
    assert [t.name for t in written.graph.initializer] == [t.name for t in original.graph.initializer]


def test_the_file_name_must_say_the_models_format(demo_backdoor, tmp_path):
    with pytest.raises(ncjax.SaveError, match=r"\.h5"):
        ncjax.save_model(demo_backdoor[0], tmp_path / "repaired.onnx")
    from conftest import tiny_classifier

    with pytest.raises(ncjax.SaveError, match="not read from a model file"):  # built by hand: no importer
        ncjax.save_model(tiny_classifier(), tmp_path / "tiny.h5")


MITIGATED = ROOT / "tests" / "fixtures" / "mitigated"


@pytest.mark.parametrize("name", ["sequential_mitigated.h5", "nested_mitigated.h5", "dynamo_flatten_mitigated.onnx"])
def test_keras_and_onnxruntime_run_the_written_files_as_ncjax_reads_them(name):
    """The files were written by save_model from pruned and nudged models, then run by tf_keras 2.21 and
    onnxruntime 1.32 (fixtures/mitigated/check_with_keras_onnxruntime.py); ncjax must read them the same."""
    if name.endswith(".onnx"):
        pytest.importorskip("onnx")
    key = name.replace("_mitigated", "")
    x = np.load(MITIGATED / "inputs.npz")[key]
    expected = np.load(MITIGATED / "outputs.npz")[key]
    model = ncjax.load_model(MITIGATED / name)
    out = np.asarray(model(x), np.float64)
    if model.output_activation == "softmax":  # ncjax returns the logits under the file's softmax
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
