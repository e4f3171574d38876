"""Clean images for a scan, from the files users have: the reference's dataset .h5, .npz arrays, a folder in
the official GTSRB test layout, or class sub-folders of images. Images come back float32 raw, resized to the
model's input."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from ncjax.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".gif", ".tif", ".tiff", ".webp"}



def load_images(path: str | os.PathLike, image_shape: tuple[int, int, int], *,
                key: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, H, W, C) float32 resized to `image_shape`, and labels where the data has them.

    .npz: array `key`, else `x_roi`, else `x` (labels from `y`); .h5: `X_test`/`Y_test` as the reference's dataset
    (one-hot labels are turned into ints); a folder with GT-final_test.csv: the official GTSRB layout, each image
    cropped to its ROI (scaled by actual / recorded size); any other folder: one sub-folder of images per class
    (sub-folder names that are ints are the labels).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {str(path)!r}")
    if path.is_dir():
        if (path / "GT-final_test.csv").exists():
            images, labels = _gtsrb_folder(path, image_shape)
        else:
            images, labels = _class_folders(path, image_shape)
    elif path.suffix == ".npz":
        images, labels = _npz(path, key)
    elif path.suffix in (".h5", ".hdf5"):
        images, labels = _h5(path, key)
    else:
        raise DataError(f"{str(path)!r}: unknown data format; give a .npz, a .h5 with X_test, or a folder of images.")
    images = _fit(images, image_shape, path)
    return images, labels


def _npz(path: Path, key: str | None):
    with np.load(path, allow_pickle=False) as data:
        names = data.files
        name = key or next((k for k in ("x_roi", "x", "X_test", "images") if k in names), None)
        if name is None or name not in names:
            raise DataError(f"{str(path)!r} has arrays {names}; name the images with --data-key.")
        labels = next((data[k] for k in ("y", "Y_test", "labels") if k in names), None)
        return data[name], _int_labels(labels)


def _h5(path: Path, key: str | None):
    try:
        with h5py.File(path, "r") as f:
            name = key or ("X_test" if "X_test" in f else None)
            if name is None or name not in f:
                raise DataError(f"{str(path)!r} has datasets {list(f)}; name the images with --data-key.")
            labels = np.asarray(f["Y_test"]) if "Y_test" in f else None
            return np.asarray(f[name]), _int_labels(labels)
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r} as HDF5: {e}") from e


def _int_labels(labels):
    if labels is None:
        return None
    labels = np.asarray(labels)
    return labels.argmax(-1) if labels.ndim == 2 else labels.astype(np.int64)


# The picture mode that gives a model of C channels its images: grayscale models read images as "L".
IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _read(path: Path, channels: int, box=None, size=None) -> np.ndarray:
    if channels not in IMAGE_MODES:
        raise DataError(f"{str(path)!r}: the model takes {channels} channels; image files give 1 (L), 3 (RGB) or 4 "
                        "(RGBA). Give the images as an .npz array instead.")
    with Image.open(path) as image:
        image = image.convert(IMAGE_MODES[channels])
        if box is not None:
            image = image.crop(box)
        if size is not None:
            image = image.resize(size, Image.BILINEAR)
        pixels = np.asarray(image, np.float32)
        return pixels[..., None] if pixels.ndim == 2 else pixels


def _gtsrb_folder(path: Path, image_shape):
    h, w, c = image_shape
    images, labels = [], []
    with open(path / "GT-final_test.csv", newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            file = path / row["Filename"]
            if not file.exists():
                continue
            with Image.open(file) as image:
                actual_w, actual_h = image.size
            sx, sy = actual_w / float(row["Width"]), actual_h / float(row["Height"])
            box = (float(row["Roi.X1"]) * sx, float(row["Roi.Y1"]) * sy,
                   (float(row["Roi.X2"]) + 1) * sx, (float(row["Roi.Y2"]) + 1) * sy)
            images.append(_read(file, c, box, (w, h)))
            labels.append(int(row["ClassId"]))
    if not images:
        raise DataError(f"{str(path)!r}: GT-final_test.csv names no image present in the folder.")
    return np.stack(images), np.asarray(labels, np.int64)


def _class_folders(path: Path, image_shape):
    h, w, c = image_shape
    images, labels = [], []
    folders = sorted(p for p in path.iterdir() if p.is_dir())
    for index, folder in enumerate(folders):
        label = int(folder.name) if folder.name.isdigit() else index
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                images.append(_read(file, c, size=(w, h)))
                labels.append(label)
    if not images:
        raise DataError(f"{str(path)!r} holds no images: give class sub-folders of images, or GTSRB's layout "
                        "with GT-final_test.csv.")
    return np.stack(images), np.asarray(labels, np.int64)


def _fit(images: np.ndarray, image_shape, path: Path) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3 and image_shape[2] == 1:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{str(path)!r}: images have shape {images.shape}; expected (N, H, W, C).")
    if images.shape[-1] != image_shape[2]:
        raise DataError(f"{str(path)!r}: images have {images.shape[-1]} channels, the model takes {image_shape[2]}.")
    images = images.astype(np.float32)
    if images.shape[1:3] != tuple(image_shape[:2]):
        import jax
        import jax.numpy as jnp

        resized = [np.asarray(jax.image.resize(jnp.asarray(images[i:i + 512]), (len(images[i:i + 512]), *image_shape),
                                               "bilinear")) for i in range(0, len(images), 512)]
        images = np.concatenate(resized)
    return images
