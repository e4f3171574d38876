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


def test_a_full_disk_is_one_write_error_that_keeps_the_previous_file(tmp_path, monkeypatch):
    from PIL import Image

    from hostile.faults import fill_disk_at
    from ncjax.errors import WriteError
    from ncjax.models.safe_files import save_png_atomic, write_text_atomic

    write_text_atomic("previous", tmp_path / "report.json")
    fill_disk_at(monkeypatch, "report.json")
    with pytest.raises(WriteError, match="cannot write .*report.json' \\(No space left on device\\); the file there "
                                         "before, if any, is kept") as caught:
        write_text_atomic("new", tmp_path / "report.json")
    assert isinstance(caught.value, OSError) and caught.value.strerror == "No space left on device"
    assert (tmp_path / "report.json").read_text() == "previous" and len(list(tmp_path.iterdir())) == 1
    fill_disk_at(monkeypatch, "summary.png")
    with pytest.raises(WriteError):
        save_png_atomic(Image.new("RGB", (4, 4)), tmp_path / "summary.png")
    assert not (tmp_path / "summary.png").exists() and len(list(tmp_path.iterdir())) == 1
