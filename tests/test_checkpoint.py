"""Checkpoints refuse, with their own messages, files of another format, another state layout, or garbage."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import tiny_classifier, tiny_images
from ncjax.scan.checkpoint import FORMAT, check_arrays

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


def test_a_scan_resumes_with_compiling_ahead_switched(interrupted, tmp_path):
    np.savez(tmp_path / "same.npz", **interrupted)
    whole = ncjax.scan_all_labels(tiny_classifier(), tiny_images(), config=SMALL, key=jax.random.key(0))
    resumed = ncjax.scan_all_labels(tiny_classifier(), tiny_images(), config=SMALL.replace(precompile_widths=True),
                                    key=jax.random.key(0), checkpoint=tmp_path / "same.npz", resume=True)
    np.testing.assert_array_equal(resumed.masks, whole.masks)
    with pytest.raises(ncjax.CheckpointError):  # a setting that can change results is still checked
        ncjax.scan_all_labels(tiny_classifier(), tiny_images(), config=SMALL.replace(deterministic=True),
                              key=jax.random.key(0), checkpoint=tmp_path / "same.npz", resume=True)


def _forged(interrupted, tmp_path, **changes):
    arrays = dict(interrupted)
    for name, change in changes.items():
        arrays[name] = change(arrays[name].copy())
    np.savez(tmp_path / "forged.npz", **arrays)
    return tmp_path / "forged.npz"


def _set(index, value):
    def change(a):
        a[index] = value
        return a
    return change


@pytest.mark.parametrize("name, change, says", [
    ("out/finished", lambda a: np.ones_like(a), "epochs and logs disagree"),  # every label done after 2 epochs
    ("out/masks", lambda a: a[:2], "results does not fit"),  # a wrong shape
    ("out/epochs", lambda a: a.astype(np.float32), "results does not fit"),  # a wrong dtype
    ("out/steps", _set(0, 0), "step counts"),
    ("meta", _set(1, 3), "position .* the first slot lies in the scan and starts a chunk"),  # not a chunk start
    ("lanes", lambda a: np.full_like(a, 7), "position .* the chunk in flight has lanes, each slot once"),  # 7 x4
    ("state/.trigger.mask_tanh", lambda a: a[:1], "scan state does not fit"),
])
def test_a_checkpoint_is_checked_whole_before_anything_is_taken(interrupted, tmp_path, name, change, says):
    with pytest.raises(ncjax.CheckpointError, match=says):
        _resume(_forged(interrupted, tmp_path, **{name: change}))


def test_extra_arrays_are_refused(interrupted, tmp_path):
    np.savez(tmp_path / "extra.npz", **interrupted, **{"out/injected": np.ones(3)})
    with pytest.raises(ncjax.CheckpointError, match="'injected' unexpected"):
        _resume(tmp_path / "extra.npz")


def test_a_finished_scan_resumes_to_its_result_when_labels_do_not_fill_the_last_chunk(tmp_path):
    model, images = tiny_classifier(), tiny_images()
    config = SMALL.replace(label_chunk=3)  # 4 labels: chunks of 3 and 1
    path = tmp_path / "done.npz"
    whole = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path)
    again = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, resume=True)
    np.testing.assert_array_equal(again.masks, whole.masks)
    assert again.label_steps == whole.label_steps


@pytest.mark.parametrize("cut", [0, 100, 2000])
def test_empty_or_truncated_checkpoints_are_refused(interrupted, tmp_path, cut):
    np.savez(tmp_path / "whole.npz", **interrupted)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:cut])
    with pytest.raises(ncjax.CheckpointError, match="cannot read the checkpoint"):
        _resume(tmp_path / "cut.npz")


def test_a_checkpoint_declaring_terabytes_is_refused_before_allocation(tmp_path):
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (3 * 10**11,)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("meta.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(ncjax.CheckpointError, match="declares 1117.6 GiB of arrays"):
        _resume(tmp_path / "huge.npz")


def test_float_rounding_of_a_saturated_mask_is_accepted_and_real_range_errors_are_not(interrupted, tmp_path):
    # tanh(x) / (2 - 1e-7) + 0.5 rounds to -6e-8 in float32 for a saturated mask: a scan's own checkpoint
    # holding one was refused on --resume before.
    assert _resume(_forged(interrupted, tmp_path, **{"out/masks": _set((0, 0, 0), np.float32(-5.96e-8))})) is not None
    with pytest.raises(ncjax.CheckpointError, match="out of range"):
        _resume(_forged(interrupted, tmp_path, **{"out/masks": _set((0, 0, 0), -0.5)}))


def test_array_names_from_a_checkpoint_are_shown_escaped():
    forged = "state/x\nverdict: clean\x1b[2J"
    with pytest.raises(ncjax.CheckpointError) as caught:
        check_arrays({forged: np.zeros(2)}, {"state/y": np.zeros(2)}, "scan_state.npz", "scan state")
    message = str(caught.value)
    assert message.isprintable() and "'state/x\\nverdict: clean\\x1b[2J' unexpected" in message
