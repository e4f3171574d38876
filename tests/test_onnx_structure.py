"""The checks an ONNX graph passes before any of its values is used: order, size, element types, subgraphs."""
from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX path needs the onnx package: pip install 'onnx>=1.14'")
from onnx import TensorProto, helper

from ncjax.errors import ModelFileError, UnsupportedModelError
from ncjax.models.onnx.graph import Node
from ncjax.models.onnx.structure import (
    check_attribute,
    check_element_type,
    check_order,
    check_tensor_dims,
)


def _node(name, inputs, outputs):
    return Node(name, "Relu", tuple(inputs), tuple(outputs), {})


def test_nodes_in_order_pass_and_a_read_before_its_definition_is_refused():
    chain = [_node("a", ["x"], ["h"]), _node("b", ["h", ""], ["y"])]
    check_order(chain, ["x"], "y", "m")
    with pytest.raises(ModelFileError, match="node 'b' \\(Relu\\) reads 'h', which no earlier node"):
        check_order(chain[::-1], ["x"], "y", "m")
    cycle = [_node("a", ["y"], ["h"]), _node("b", ["h"], ["y"])]
    with pytest.raises(ModelFileError, match="reads 'y'"):
        check_order(cycle, ["x"], "y", "m")


def test_a_value_defined_twice_or_an_output_no_node_computes_is_refused():
    with pytest.raises(ModelFileError, match="defines 'x', which the graph already defines"):
        check_order([_node("a", ["x"], ["x"])], ["x"], "x", "m")
    with pytest.raises(ModelFileError, match="the graph's output 'z' is computed by no node"):
        check_order([_node("a", ["x"], ["y"])], ["x"], "z", "m")


@pytest.mark.parametrize("elem_type", [TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.UNDEFINED])
def test_element_types_that_hold_no_real_numbers_are_refused(elem_type):
    check_element_type(TensorProto.FLOAT, "t")
    with pytest.raises(ModelFileError, match=f"element type {elem_type}"):
        check_element_type(elem_type, "t")


def test_a_negative_dimension_is_refused_before_the_data_is_read():
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    check_tensor_dims(tensor)
    tensor.dims[0] = -2
    with pytest.raises(ModelFileError, match="tensor 'w' declares a negative dimension"):
        check_tensor_dims(tensor)


def test_a_subgraph_attribute_is_refused_by_name():
    check_attribute(helper.make_attribute("alpha", 0.1), "n", "m")
    body = helper.make_attribute("body", helper.make_graph([], "g", [], []))
    with pytest.raises(UnsupportedModelError, match="node 'n' carries a subgraph \\(attribute 'body'\\)"):
        check_attribute(body, "n", "m")
