"""Writing files whole: a failed or interrupted write leaves the previous file as it was and nothing beside it."""
from __future__ import annotations

import numpy as np
import pytest

from ncjax.models.safe_files import atomic_path, write_npz_atomic


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("previous")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("half of a new fi")
        raise KeyboardInterrupt
    assert target.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_write_that_finishes_replaces_the_file(tmp_path):
    target = tmp_path / "state.npz"
    write_npz_atomic(target, a=np.arange(3))
    write_npz_atomic(target, a=np.arange(5))
    assert np.load(target)["a"].tolist() == [0, 1, 2, 3, 4] and len(list(tmp_path.iterdir())) == 1
