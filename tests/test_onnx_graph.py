"""The ONNX graph as data: weights and constants apart, node order, the final activation."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX path needs the onnx package: pip install 'onnx>=1.14'")
from onnx import TensorProto, helper, numpy_helper

from ncjax.models.onnx.graph import parse


def _model(last_axis: int, opset: int = 13):
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    shape = numpy_helper.from_array(np.asarray([0, -1], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["z"]),
             helper.make_node("Softmax", ["z"], ["y"], axis=last_axis)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], initializer=[w, shape])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_weights_are_params_and_shapes_are_constants():
    g = parse(_model(-1), "m")
    assert set(g.params) == {"w"} and set(g.constants) == {"shape"}
    assert g.input_name == "x" and g.input_dims == ("N", 1, 2, 2) and g.opset == 13


def test_final_softmax_over_classes_is_removed_other_axes_are_kept():
    stripped = parse(_model(-1), "m")
    assert stripped.output_activation == "softmax" and stripped.output_name == "z"
    assert [n.op_type for n in stripped.nodes] == ["Reshape", "MatMul"]
    kept = parse(_model(0), "m")  # over the batch: not a classifier's softmax, left in place
    assert kept.output_activation == "linear" and kept.nodes[-1].op_type == "Softmax"


def test_run_evaluates_nodes_in_order():
    g = parse(_model(-1), "m")
    seen = []
    x = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)
    out = g.run({k: v for k, v in g.params.items()}, x, record=lambda node, outs: seen.append(node.op_type))
    assert seen == ["Reshape", "MatMul"]
    np.testing.assert_allclose(np.asarray(out), x.reshape(2, 4))
