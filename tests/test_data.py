"""Clean-image loading from every supported layout."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

import ncjax
from ncjax.data.images import load_images
from ncjax.errors import DataError


def test_npz_prefers_x_roi_and_reads_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 8, 8, 3), np.uint8), x_roi=np.full((3, 8, 8, 3), 7, np.uint8), y=[1, 2, 3])
    clean = load_images(path, (8, 8, 3))
    assert clean.images.dtype == np.float32 and np.all(clean.images == 7) and clean.labels.tolist() == [1, 2, 3]
    assert np.all(load_images(path, (8, 8, 3), key="x").images == 0)


def test_reference_h5_with_one_hot_labels_and_resize(tmp_path):
    path = tmp_path / "gtsrb_dataset.h5"
    with h5py.File(path, "w") as f:
        f["X_test"] = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
        f["Y_test"] = np.eye(5)[[0, 4, 2, 2]]
    clean = load_images(path, (8, 8, 3))
    assert clean.images.shape == (4, 8, 8, 3) and clean.labels.tolist() == [0, 4, 2, 2]
    assert not clean.pixels and clean.notes == ("resized from 16x16 to the model's 8x8",)


def test_class_folders(tmp_path):
    for label in (3, 10):
        (tmp_path / str(label)).mkdir()
        for k in range(2):
            Image.fromarray(np.full((12, 10, 3), label * 10 + k, np.uint8)).save(tmp_path / str(label) / f"{k}.png")
    clean = load_images(tmp_path, (6, 6, 3))
    images, labels = clean.images, clean.labels
    assert images.shape == (4, 6, 6, 3) and sorted(labels.tolist()) == [3, 3, 10, 10]
    assert np.allclose(images[labels == 10][0], 100) and clean.pixels


def test_gtsrb_layout_crops_the_scaled_roi(tmp_path):
    # Recorded at 70x70 with ROI (10..59); the file is 35x35, so the ROI is (5..29.5).
    img = np.zeros((35, 35, 3), np.uint8)
    img[5:30, 5:30] = 200
    Image.fromarray(img).save(tmp_path / "00001.ppm")
    (tmp_path / "GT-final_test.csv").write_text(
        "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00001.ppm;70;70;10;10;59;59;14\n"
        "missing.ppm;70;70;10;10;59;59;3\n")
    clean = load_images(tmp_path, (10, 10, 3))
    images, labels = clean.images, clean.labels
    assert labels.tolist() == [14] and images.shape == (1, 10, 10, 3)
    assert images[0, 2:8, 2:8].min() > 150  # the crop is the sign, not the black border


def test_real_ppm_sample(real):
    clean = load_images(real / "gtsrb" / "ppm_sample", (32, 32, 3))
    images, labels = clean.images, clean.labels
    assert len(images) == 215 and set(labels.tolist()) == set(range(43))
    model = ncjax.load_model(real / "models" / "gtsrb_clean_logits.h5")
    assert (np.asarray(model(images)).argmax(1) == labels).mean() > 0.9


def _text_file(p):
    (p / "a.txt").write_text("x")
    return p / "a.txt"


def _npz(name, **arrays):
    def make(p):
        np.savez(p / name, **arrays)
        return p / name
    return make


def _empty_dir(p):
    (p / "empty").mkdir()
    return p / "empty"


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "none.npz", "not found"),
    (_text_file, "unknown data format"),
    (_npz("b.npz", z=np.zeros((2, 8, 8, 3))), "--data-key"),
    (_npz("c.npz", x=np.zeros((2, 8, 8, 1))), "1 channels; the model takes 3"),
    (_empty_dir, "no images"),
])
def test_errors_say_what_to_do(tmp_path, make, match):
    with pytest.raises(DataError, match=match) as info:
        load_images(make(tmp_path), (8, 8, 3))
    assert isinstance(info.value, ncjax.NCJaxError)


def test_uint8_arrays_are_raw_pixels_and_float_arrays_model_inputs(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    np.savez(tmp_path / "u8.npz", x=pixels)
    np.savez(tmp_path / "f32.npz", x=pixels / np.float32(255))
    raw = load_images(tmp_path / "u8.npz", (8, 8, 3))
    scaled = load_images(tmp_path / "f32.npz", (8, 8, 3))
    assert raw.pixels and not scaled.pixels
    mnist = ncjax.Preprocessing(mode="mnist")
    np.testing.assert_allclose(raw.in_model_scale(mnist), scaled.in_model_scale(mnist), rtol=1e-6)
    assert scaled.in_model_scale(mnist) is scaled.images  # model inputs stay as they are


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_first_arrays_are_transposed_with_a_note(tmp_path, channels):
    nhwc = np.random.default_rng(0).uniform(0, 1, (5, 8, 8, channels)).astype(np.float32)
    np.savez(tmp_path / "nchw.npz", x=np.moveaxis(nhwc, -1, 1))
    clean = load_images(tmp_path / "nchw.npz", (8, 8, channels))
    np.testing.assert_array_equal(clean.images, nhwc)
    assert any("(N, C, H, W)" in note for note in clean.notes)


def test_a_flat_folder_of_images_is_read_unlabelled(tmp_path):
    for k in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(tmp_path / f"{k}.png")
    clean = load_images(tmp_path, (8, 8, 3))
    assert clean.images.shape == (3, 8, 8, 3) and clean.labels is None and clean.pixels
    assert sorted(float(v) for v in clean.images[:, 0, 0, 0]) == [0.0, 40.0, 80.0]
    assert any("no labels" in note for note in clean.notes)


def test_named_class_folders_are_labelled_in_sorted_order_and_the_mapping_is_noted(tmp_path):
    for name in ("dog", "cat", "7"):  # one numeric name among words: every folder is labelled by its order
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "a.png")
    clean = load_images(tmp_path, (8, 8, 3))
    assert sorted(clean.labels.tolist()) == [0, 1, 2]
    assert clean.notes == ("labels from the sub-folders' sorted names: 0='7', 1='cat', 2='dog'",)
