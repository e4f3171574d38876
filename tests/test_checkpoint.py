"""Checkpoints refuse, with their own messages, files of another format, another state layout, or garbage."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images
from ncjax.checkpoint import FORMAT

SMALL = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=6, patience=2, attack_success_threshold=0.9)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A checkpoint written mid-chunk (states saved), by a scan stopped after its second epoch."""
    path = tmp_path_factory.mktemp("ckpt") / "scan.npz"

    def stop(progress):
        if progress.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_all_labels(tiny_classifier(), tiny_images(), config=SMALL, key=jax.random.key(0),
                              checkpoint=path, callback=stop)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _resume(path):
    return ncjax.scan_all_labels(tiny_classifier(), tiny_images(), config=SMALL, key=jax.random.key(0),
                                 checkpoint=path, resume=True)


def test_states_are_saved_by_name(interrupted):
    names = {k for k in interrupted if k.startswith("state/")}
    assert {"state/.trigger.mask_tanh", "state/.schedule.cost", "state/.pool"} <= names
    assert int(interrupted["meta"][0]) == FORMAT


def test_another_state_layout_is_refused_by_its_message(interrupted, tmp_path):
    arrays = dict(interrupted)
    arrays["state/.schedule.old_counter"] = arrays.pop("state/.schedule.cost")  # a field renamed in some version
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ncjax.CheckpointError, match=r"another layout \(missing \['.schedule.cost'\], unexpected "
                                                     r"\['.schedule.old_counter'\]\).*Delete it"):
        _resume(tmp_path / "old.npz")


def test_another_format_is_refused_before_anything_else(interrupted, tmp_path):
    arrays = dict(interrupted, meta=np.asarray([1, 0, 0, 1], np.int64), fingerprint=np.asarray("other"))
    np.savez(tmp_path / "v1.npz", **arrays)
    with pytest.raises(ncjax.CheckpointError, match=f"format 1, this ncjax reads format {FORMAT}"):
        _resume(tmp_path / "v1.npz")


def test_garbage_is_refused(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ncjax.CheckpointError, match="cannot read the checkpoint"):
        _resume(tmp_path / "junk.npz")


def test_the_interrupted_scan_resumes(interrupted, tmp_path):
    np.savez(tmp_path / "same.npz", **interrupted)
    whole = ncjax.scan_all_labels(tiny_classifier(), tiny_images(), config=SMALL, key=jax.random.key(0))
    np.testing.assert_array_equal(_resume(tmp_path / "same.npz").masks, whole.masks)
