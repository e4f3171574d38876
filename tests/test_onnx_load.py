"""ONNX files as Classifiers: outputs equal onnxruntime's, layouts, and one clear error per refusal."""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ncjax
from conftest import relative_error

onnx = pytest.importorskip("onnx", reason="the ONNX path needs the onnx package: pip install 'onnx>=1.14'")
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "onnx"
NAMES = ["torch_flatten", "dynamo_flatten", "torch_grouped", "dynamo_grouped", "torch_branch", "dynamo_branch",
         "handmade_opset9", "handmade_nhwc_opset17"]
FINAL = {"softmax": jax.nn.softmax, "log_softmax": jax.nn.log_softmax, "linear": lambda v: v}


@pytest.fixture(scope="module")
def expected():
    return np.load(FIXTURES / "outputs.npz")


@pytest.mark.parametrize("name", NAMES)
def test_outputs_equal_onnxruntime(name, expected):
    model = ncjax.load_model(FIXTURES / f"{name}.onnx")
    x, y = expected[f"{name}/x"], expected[f"{name}/y"]
    assert model.input_shape == (16, 16, 3) and model.num_classes == 5 and model.format == "onnx"
    assert model.input_layout == ("NHWC" if "nhwc" in name else "NCHW")
    logits = model(jnp.asarray(x))  # NHWC images whatever the file's layout
    assert relative_error(FINAL[model.output_activation](logits), y) <= 1e-5


def test_final_softmax_is_removed_and_recorded():
    assert ncjax.load_model(FIXTURES / "torch_flatten.onnx").output_activation == "softmax"
    assert ncjax.load_model(FIXTURES / "handmade_nhwc_opset17.onnx").output_activation == "log_softmax"
    assert ncjax.load_model(FIXTURES / "torch_grouped.onnx").output_activation == "linear"


def test_apply_jits_vmaps_and_differentiates(expected):
    model = ncjax.load_model(FIXTURES / "torch_branch.onnx")
    x = jnp.asarray(expected["torch_branch/x"])
    direct = model(x)
    np.testing.assert_allclose(jax.jit(model.apply)(model.params, x), direct, rtol=1e-5, atol=1e-5)
    one_by_one = jax.vmap(lambda image: model.apply(model.params, image[None])[0])(x)
    np.testing.assert_allclose(one_by_one, direct, rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda images: model.apply(model.params, images)[:, 0].sum())(x)
    assert grad.shape == x.shape and bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0


def test_summary_lists_the_nodes():
    text = ncjax.load_model(FIXTURES / "torch_grouped.onnx").summary()
    for part in ("Conv", "GlobalAveragePool", "Gemm", "the file's layout: NCHW", "classes: 5"):
        assert part in text


def test_an_onnx_model_is_scanned_like_a_keras_one():
    model = ncjax.load_model(FIXTURES / "torch_flatten.onnx")
    config = ncjax.ScanConfig.fast(batch_size=8, nb_sample=16, max_epochs=2, patience=1)
    images = np.random.default_rng(0).uniform(0, 255, (24, 16, 16, 3)).astype(np.float32)
    result = ncjax.scan_all_labels(model, images, labels=[0, 3], config=config, key=jax.random.key(0))
    assert result.masks.shape == (2, 16, 16) and result.patterns.shape == (2, 16, 16, 3)
    assert np.all(np.isfinite(result.l1_norms)) and result.label_steps == 2 * 2 * 2


# ------------------------------------------------------------------------------------------ refusals


def _save(tmp_path, nodes, *, inputs=None, outputs=None, initializers=(), opset=17, name="model.onnx"):
    inputs = inputs or [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _flatten_gemm(source="images", features=3 * 8 * 8):
    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.1, (features, 4)).astype(np.float32), "w")
    return [helper.make_node("Flatten", [source], ["flat"]), helper.make_node("Gemm", ["flat", "w"], ["scores"])], [w]


def test_unsupported_op_names_the_op_and_node(tmp_path):
    head, weights = _flatten_gemm("resized")
    node = helper.make_node("LpNormalization", ["images"], ["resized"], name="my_norm")
    path = _save(tmp_path, [node, *head], initializers=weights)
    with pytest.raises(ncjax.UnsupportedLayerError, match="'my_norm'.*LpNormalization.*Supported: .*Conv") as info:
        ncjax.load_model(path)
    assert isinstance(info.value, ValueError)


def test_custom_domain_is_refused_without_running_anything(tmp_path):
    head, weights = _flatten_gemm("custom")
    node = helper.make_node("MyOp", ["images"], ["custom"], name="evil", domain="com.example")
    path = _save(tmp_path, [node, *head], initializers=weights)
    with pytest.raises(ncjax.UnsupportedLayerError, match="custom operator com.example::MyOp"):
        ncjax.load_model(path)


def test_two_inputs_and_used_dropout_mask_are_refused(tmp_path):
    head, weights = _flatten_gemm()
    extra = helper.make_tensor_value_info("other", TensorProto.FLOAT, ["N", 4])
    path = _save(tmp_path, head, inputs=[helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8]),
                                         extra], initializers=weights)
    with pytest.raises(ncjax.UnsupportedModelError, match="2 input"):
        ncjax.load_model(path)
    head, weights = _flatten_gemm("dropped")
    nodes = [helper.make_node("Dropout", ["images"], ["dropped", "mask"]), *head,
             helper.make_node("Cast", ["mask"], ["mask_float"], to=TensorProto.FLOAT)]
    path = _save(tmp_path, nodes, initializers=weights,
                 outputs=[helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4])])
    with pytest.raises(ncjax.UnsupportedModelError, match="first output"):
        ncjax.load_model(path)


def test_layout_and_size_must_be_known(tmp_path):
    head, weights = _flatten_gemm(features=3 * 8 * 3)
    ambiguous = [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 3])]
    path = _save(tmp_path, head, inputs=ambiguous, initializers=weights)
    with pytest.raises(ncjax.UnsupportedModelError, match="layout='NCHW'"):
        ncjax.load_model(path)
    assert ncjax.load_model(path, layout="NCHW").input_shape == (8, 3, 3)
    assert ncjax.load_model(path, layout="NHWC").input_shape == (3, 8, 3)

    head, weights = _flatten_gemm(features=3 * 8 * 8)
    open_size = [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    path = _save(tmp_path, head, inputs=open_size, initializers=weights)
    with pytest.raises(ncjax.UnsupportedModelError, match=r"input_shape=\(H, W, C\)"):
        ncjax.load_model(path)
    assert ncjax.load_model(path, input_shape=(8, 8, 3)).input_shape == (8, 8, 3)
    with pytest.raises(ncjax.UnsupportedModelError, match="does not fit"):
        ncjax.load_model(path, input_shape=(8, 8, 1))


def test_fixed_batch_of_one_is_vmapped_and_larger_is_refused(tmp_path):
    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.1, (3 * 8 * 8, 4)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.asarray([1, -1], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["images", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["scores"])]
    one = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])]
    path = _save(tmp_path, nodes, inputs=one, initializers=[w, shape])
    model = ncjax.load_model(path)
    x = np.random.default_rng(1).uniform(0, 255, (5, 8, 8, 3)).astype(np.float32)
    expected = x.transpose(0, 3, 1, 2).reshape(5, -1) @ np.asarray(numpy_helper.to_array(w))
    assert relative_error(model(jnp.asarray(x)), expected) <= 1e-5
    four = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [4, 3, 8, 8])]
    with pytest.raises(ncjax.UnsupportedModelError, match="dynamic batch"):
        ncjax.load_model(_save(tmp_path, nodes, inputs=four, initializers=[w, shape], name="four.onnx"))


def test_bad_files(tmp_path):
    with pytest.raises(ncjax.ModelNotFoundError):
        ncjax.load_model(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(ncjax.ModelFileError, match="could not be read as an ONNX model"):
        ncjax.load_model(garbage)
    with pytest.raises(ncjax.UnsupportedModelError, match="architecture="):
        ncjax.load_model(FIXTURES / "torch_grouped.onnx", architecture={})


@pytest.mark.parametrize("image, pads", [((3, 30000, 30000), 1), ((3, 8, 8), 1_000_000)])
def test_an_input_or_a_node_output_no_scan_could_hold_is_refused_before_anything_is_allocated(tmp_path, image, pads):
    c, h, w = image
    kernel = numpy_helper.from_array(np.ones((2, c, 3, 3), np.float32), "k")
    w_dense = numpy_helper.from_array(np.ones((2, 4), np.float32), "w")
    nodes = [helper.make_node("Conv", ["images", "k"], ["conv"], pads=[pads] * 4),
             helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]), helper.make_node("Gemm", ["flat", "w"], ["scores"])]
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", c, h, w])]
    path = _save(tmp_path, nodes, inputs=inputs, initializers=[kernel, w_dense])
    with pytest.raises(ncjax.ModelFileError, match="per image; that is not a size an image classifier can have"):
        ncjax.load_model(path)


@pytest.mark.parametrize("attrs, says", [
    (dict(strides=[0, 0]), "its strides must be 2 whole numbers from 1 up"),
    (dict(strides=[-1, 1]), "its strides must be 2 whole numbers from 1 up"),
    (dict(pads=[-2, 0, 0, 0]), "its pads must be 4 whole numbers from 0 up"),
    (dict(dilations=[0, 1]), "its dilations must be 2 whole numbers from 1 up"),
    (dict(kernel_shape=[0, 0]), "its kernel_shape must be 2 whole numbers from 1 up"),
    (dict(kernel_shape=[5, 5]), "its kernel_shape does not match its weights"),
    (dict(group=3), "its group does not divide"),
])
def test_window_attributes_are_checked_by_range_at_their_own_node(tmp_path, attrs, says):
    kernel = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "k")
    head, weights = _flatten_gemm("conv", features=2 * 8 * 8)
    node = helper.make_node("Conv", ["images", "k"], ["conv"], name="the_conv", **{"pads": [1] * 4, **attrs})
    path = _save(tmp_path, [node, *head], initializers=[kernel, *weights])
    with pytest.raises(ncjax.UnsupportedModelError, match=rf"'the_conv' \(Conv\): {says}"):
        ncjax.load_model(path)


def test_a_cast_to_complex_numbers_is_refused(tmp_path):
    head, weights = _flatten_gemm("cast")
    node = helper.make_node("Cast", ["images"], ["cast"], to=TensorProto.COMPLEX64)
    with pytest.raises(ncjax.UnsupportedModelError, match="casts to a type other than a real number or bool"):
        ncjax.load_model(_save(tmp_path, [node, *head], initializers=weights))


def _int64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


@pytest.mark.parametrize("node, constants, says", [
    (helper.make_node("Gather", ["images", "i"], ["taken"], axis=1), [_int64("i", [0, 1, 7])],
     "its indices lie outside the 3 entries"),
    (helper.make_node("Gather", ["images", "i"], ["taken"], axis=9), [_int64("i", [0])], "its axis lies outside"),
    (helper.make_node("Slice", ["images", "s", "e", "a"], ["taken"]), [_int64("s", [0]), _int64("e", [2]),
                                                                        _int64("a", [7])], "its axes must be distinct"),
    (helper.make_node("Slice", ["images", "s", "e", "a", "t"], ["taken"]),
     [_int64("s", [0]), _int64("e", [2]), _int64("a", [1]), _int64("t", [0])], "steps not 0"),
])
def test_gather_and_slice_out_of_range_are_refused_not_clamped(tmp_path, node, constants, says):
    head, weights = _flatten_gemm("taken", features=8)
    path = _save(tmp_path, [node, *head], initializers=[*constants, *weights])
    with pytest.raises(ncjax.UnsupportedModelError, match=says):
        ncjax.load_model(path)


def test_unknown_opsets_a_missing_ir_version_and_twice_defined_names_are_refused(tmp_path):
    head, weights = _flatten_gemm()
    for opset in (99, 0, 5):
        images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])
        graph = helper.make_graph(head, "g", [images], [helper.make_tensor_value_info("scores", TensorProto.FLOAT,
                                                                                      ["N", 4])], initializer=weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] if opset else [])
        onnx.save(model, tmp_path / "versioned.onnx")
        with pytest.raises(ncjax.ModelFileError, match="ncjax implements opsets 7 to"):
            ncjax.load_model(tmp_path / "versioned.onnx")
    model = onnx.load(_save(tmp_path, head, initializers=weights))
    model.ir_version = 0
    onnx.save(model, tmp_path / "no_ir.onnx")
    with pytest.raises(ncjax.ModelFileError, match="declares no IR version"):
        ncjax.load_model(tmp_path / "no_ir.onnx")
    twice = [helper.make_node("Relu", ["images"], ["r"]), helper.make_node("Relu", ["images"], ["r"]),
             *_flatten_gemm("r")[0]]
    with pytest.raises(ncjax.ModelFileError, match="defines 'r', which the graph already defines"):
        ncjax.load_model(_save(tmp_path, twice, initializers=weights, name="twice.onnx"))


def test_a_pooling_window_larger_than_its_input_is_refused(tmp_path):
    head, weights = _flatten_gemm("pooled", features=3)
    node = helper.make_node("MaxPool", ["images"], ["pooled"], kernel_shape=[9, 9], name="big_pool")
    with pytest.raises(ncjax.UnsupportedModelError, match="'big_pool' \\(MaxPool\\): its window is larger"):
        ncjax.load_model(_save(tmp_path, [node, *head], initializers=weights))
