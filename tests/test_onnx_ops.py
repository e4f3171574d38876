"""ONNX operators on hand-computed cases: slicing, padding geometry, pooling edges, integer division."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncjax.models.onnx.ops import OPS, _onnx_slice, _spatial_pads, static


def _spec_slice(start, end, step, size):
    """The ONNX specification's Slice, element by element."""
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
        return list(range(start, end, step))
    start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
    return list(range(start, end, step))


@given(st.integers(-12, 12) | st.sampled_from([2**63 - 1, -(2**63)]),
       st.integers(-12, 12) | st.sampled_from([2**63 - 1, -(2**63) + 1]),
       st.integers(-3, 3).filter(bool), st.integers(0, 8))
def test_slice_matches_the_specification(start, end, step, size):
    assert list(np.arange(size)[_onnx_slice(start, end, step, size)]) == _spec_slice(start, end, step, size)


def test_same_padding_puts_the_odd_cell_at_the_end_or_the_start():
    # 7 wide, kernel 4, stride 2: out 4, total pad (4-1)*2 + 4 - 7 = 3
    assert _spatial_pads({"auto_pad": "SAME_UPPER"}, [7], [4], [2], [1]) == [(1, 2)]
    assert _spatial_pads({"auto_pad": "SAME_LOWER"}, [7], [4], [2], [1]) == [(2, 1)]
    assert _spatial_pads({"auto_pad": "VALID"}, [7, 7], [3, 3], [1, 1], [1, 1]) == [(0, 0), (0, 0)]
    assert _spatial_pads({"pads": [1, 2, 3, 4]}, [7, 7], [3, 3], [1, 1], [1, 1]) == [(1, 3), (2, 4)]


def test_integer_division_truncates_toward_zero_and_stays_static():
    (out,) = OPS["Div"]([np.array([-7, 7]), np.array([2, -2])], {}, 13)
    assert static(out) and out.tolist() == [-3, -3]


def test_ceil_mode_max_pool_keeps_the_partial_window():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    (floor,) = OPS["MaxPool"]([x], {"kernel_shape": [2, 2], "strides": [2, 2]}, 13)
    (ceil,) = OPS["MaxPool"]([x], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, 13)
    assert floor.shape == (1, 1, 2, 2) and ceil.shape == (1, 1, 3, 3)
    assert np.asarray(ceil)[0, 0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]


def test_average_pool_counts_pads_only_when_asked():
    x = np.ones((1, 1, 2, 2), np.float32)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    (without,) = OPS["AveragePool"]([x], attrs, 13)
    (with_pads,) = OPS["AveragePool"]([x], {**attrs, "count_include_pad": 1}, 13)
    np.testing.assert_allclose(np.asarray(without)[0, 0], np.ones((2, 2)))
    np.testing.assert_allclose(np.asarray(with_pads)[0, 0], np.full((2, 2), 0.25))


@pytest.mark.parametrize("opset, inputs, attrs", [
    (9, [], {"min": -1.0, "max": 2.0}),
    (13, [np.float32(-1.0), np.float32(2.0)], {}),
])
def test_clip_bounds_as_attributes_or_inputs(opset, inputs, attrs):
    x = np.array([-5.0, 0.5, 5.0], np.float32)
    (out,) = OPS["Clip"]([x, *inputs], attrs, opset)
    assert np.asarray(out).tolist() == [-1.0, 0.5, 2.0]


def test_shape_arithmetic_stays_static():
    x = np.zeros((2, 3, 4), np.float32)
    (shape,) = OPS["Shape"]([x], {}, 15)
    (tail,) = OPS["Shape"]([x], {"start": 1}, 15)
    (first,) = OPS["Gather"]([shape, np.array(0)], {"axis": 0}, 13)
    assert static(first) and int(first) == 2 and tail.tolist() == [3, 4]
