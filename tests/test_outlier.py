"""The MAD stage, on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

import ncjax
from ncjax.verdict.outlier import gap_outliers, l1_norms, mad_outliers


def test_odd_count_by_hand():
    # norms 1, 5, 6, 7, 20: median 6; |dev| 5, 1, 0, 1, 14 -> median 1; MAD 1.4826
    r = mad_outliers([5.0, 1.0, 7.0, 6.0, 20.0], labels=[10, 11, 12, 13, 14])
    assert r.median == 6.0 and r.mad == pytest.approx(1.4826)
    assert r.anomaly_index == pytest.approx(5 / 1.4826)
    assert r.flagged == (11,) and r.flagged_norms == (1.0,)  # 20 is an outlier too, but above the median
    np.testing.assert_allclose(r.indices, np.array([1, 5, 1, 0, 14]) / 1.4826)


def test_even_count_and_ties():
    # norms 2, 2, 10, 10, 10, 12: median 10; |dev| 8, 8, 0, 0, 0, 2 -> median 1; MAD 1.4826
    r = mad_outliers([10.0, 2.0, 10.0, 12.0, 2.0, 10.0])
    assert r.median == 10.0 and r.mad == pytest.approx(1.4826)
    assert r.flagged == (1, 4)  # tied norms keep label order
    assert r.anomaly_index == pytest.approx(8 / 1.4826)


def test_reference_lines_format():
    r = mad_outliers([64.466667, 16.117647, 64.466667, 78.0, 50.0])
    lines = r.lines()
    assert lines[0] == f"median: {64.466667:f}, MAD: {r.mad:f}"
    assert lines[1].startswith("anomaly index: ") and len(lines[1].split(": ")[1].split(".")[1]) == 6
    assert lines[2] == "flagged label list: 1: 16.117647"
    assert mad_outliers([1.0, 1.1, 0.9]).lines()[2] == "flagged label list: "


def test_mad_zero_is_a_result_not_a_division_error():
    r = mad_outliers([5.0, 5.0, 5.0, 1.0])
    assert r.mad == 0 and r.anomaly_index == np.inf and r.flagged == (3,) and "MAD is 0" in r.note
    same = mad_outliers([3.0, 3.0, 3.0])
    assert same.anomaly_index == 0 and same.flagged == ()


def test_fewer_than_three_labels():
    r = mad_outliers([1.0, 9.0])
    assert r.flagged == () and np.isnan(r.anomaly_index) and "at least 3" in r.note


def test_quantized_norms_as_the_reference_reads_pngs():
    mask = np.full((1, 2, 2), 0.999)  # 0.999 * 255 = 254.7 -> 254, truncated as astype('uint8') does
    assert l1_norms(mask)[0] == pytest.approx(3.996)
    assert l1_norms(mask, quantize=True)[0] == pytest.approx(4 * 254 / 255)


def test_bad_norms():
    with pytest.raises(ncjax.NCJaxError):
        mad_outliers([])
    with pytest.raises(ncjax.NCJaxError):
        mad_outliers([1.0, np.nan, 2.0])
    with pytest.raises(ncjax.NCJaxError):
        mad_outliers([1.0, 2.0, 3.0], labels=[1, 2])


BULK = [100.0, 95.0, 105.0, 98.0, 102.0, 97.0, 103.0, 99.0]  # eight labels around 100


@pytest.mark.parametrize("small, kept, gap", [
    ([101.0, 20.0], (9,), 95 / 20),  # one trigger far below the rest
    ([22.0, 20.0], (9, 8), 95 / 22),  # two targets together, apart from the rest: both kept
    ([60.0, 20.0], (9,), 60 / 20),  # the largest ratio is between 20 and 60: only 20 is kept
    ([80.0, 75.0], (), 95 / 80),  # MAD flags both, but no ratio reaches 1.5: nothing kept
    ([101.0, 0.0], (9,), np.inf),  # an empty mask
])
def test_gap_keeps_the_labels_that_stand_apart(small, kept, gap):
    mad = mad_outliers(BULK + small)
    assert set(mad.flagged) >= set(kept) and mad.flagged  # the gap rule only ever narrows the MAD test
    r = gap_outliers(mad, min_gap=1.5)
    assert r.flagged == kept and r.gap == pytest.approx(gap)
    assert r.flagged_norms == tuple(float((BULK + small)[i]) for i in kept)


def test_gap_with_nothing_flagged_and_bad_min_gap():
    r = gap_outliers(mad_outliers(BULK + [96.0, 104.0]))
    assert r.flagged == () and np.isnan(r.gap)
    with pytest.raises(ncjax.ConfigError, match="min_gap"):
        gap_outliers(mad_outliers(BULK), min_gap=0.5)
