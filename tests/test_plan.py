"""The scan's plan: compaction widths and what runs where."""
from __future__ import annotations

import pytest

from ncjax.scan.plan import compacted_width, narrower_widths, precompiles
from ncjax.search.config import ScanConfig


@pytest.mark.parametrize("width, devices, floor, expected", [
    (43, 1, 1, [32, 16, 8, 4, 2, 1]),
    (43, 1, 8, [32, 16, 8]),
    (43, 1, 64, []),
    (64, 1, 1, [32, 16, 8, 4, 2, 1]),
    (10, 4, 1, [8, 4]),  # multiples of the device count
    (1, 1, 1, []),
])
def test_narrower_widths_are_the_widths_compaction_visits(width, devices, floor, expected):
    assert narrower_widths(width, devices, floor) == expected
    visited = {compacted_width(active, devices, floor) for active in range(1, width)} - {width}
    assert set(expected) == {w for w in visited if w < width}


def test_compiling_ahead_is_on_for_accelerators_unless_set():
    assert precompiles("gpu", ScanConfig()) and precompiles("tpu", ScanConfig())
    assert not precompiles("cpu", ScanConfig())
    assert precompiles("cpu", ScanConfig(precompile_widths=True))
    assert not precompiles("gpu", ScanConfig(precompile_widths=False))
