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
    images, labels = load_images(path, (8, 8, 3))
    assert images.dtype == np.float32 and np.all(images == 7) and labels.tolist() == [1, 2, 3]
    images, _ = load_images(path, (8, 8, 3), key="x")
    assert np.all(images == 0)


def test_reference_h5_with_one_hot_labels_and_resize(tmp_path):
    path = tmp_path / "gtsrb_dataset.h5"
    with h5py.File(path, "w") as f:
        f["X_test"] = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
        f["Y_test"] = np.eye(5)[[0, 4, 2, 2]]
    images, labels = load_images(path, (8, 8, 3))
    assert images.shape == (4, 8, 8, 3) and labels.tolist() == [0, 4, 2, 2]


def test_class_folders(tmp_path):
    for label in (3, 10):
        (tmp_path / str(label)).mkdir()
        for k in range(2):
            Image.fromarray(np.full((12, 10, 3), label * 10 + k, np.uint8)).save(tmp_path / str(label) / f"{k}.png")
    images, labels = load_images(tmp_path, (6, 6, 3))
    assert images.shape == (4, 6, 6, 3) and sorted(labels.tolist()) == [3, 3, 10, 10]
    assert np.allclose(images[labels == 10][0], 100)


def test_gtsrb_layout_crops_the_scaled_roi(tmp_path):
    # Recorded at 70x70 with ROI (10..59); the file is 35x35, so the ROI is (5..29.5).
    img = np.zeros((35, 35, 3), np.uint8)
    img[5:30, 5:30] = 200
    Image.fromarray(img).save(tmp_path / "00001.ppm")
    (tmp_path / "GT-final_test.csv").write_text(
        "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00001.ppm;70;70;10;10;59;59;14\n"
        "missing.ppm;70;70;10;10;59;59;3\n")
    images, labels = load_images(tmp_path, (10, 10, 3))
    assert labels.tolist() == [14] and images.shape == (1, 10, 10, 3)
    assert images[0, 2:8, 2:8].min() > 150  # the crop is the sign, not the black border


def test_real_ppm_sample(real):
    images, labels = load_images(real / "gtsrb" / "ppm_sample", (32, 32, 3))
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
    (_npz("c.npz", x=np.zeros((2, 8, 8, 1))), "1 channels"),
    (_empty_dir, "no images"),
])
def test_errors_say_what_to_do(tmp_path, make, match):
    with pytest.raises(DataError, match=match) as info:
        load_images(make(tmp_path), (8, 8, 3))
    assert isinstance(info.value, ncjax.NCJaxError)
