"""Shared test helpers: the committed Keras fixtures and the real third-party data beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
KERAS_FIXTURES = ROOT / "tests" / "fixtures" / "keras"
# CI lays shared/ beside the checkout; NCJAX_REAL_DATA points elsewhere if needed.
REAL = Path(os.environ.get("NCJAX_REAL_DATA", ROOT.parent / "shared" / "real"))


@pytest.fixture(scope="session")
def real() -> Path:
    """The folder of real GTSRB models and images; the test is skipped where it is absent."""
    if not (REAL / "models").is_dir() or not (REAL / "gtsrb").is_dir():
        pytest.skip(f"real third-party data not found at {REAL} (CI lays it beside the checkout as ../shared/real)")
    return REAL


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: float32 rounding is relative to the output's scale."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())
