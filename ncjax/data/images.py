"""Clean images for a scan, from the files users have: the reference's dataset .h5, .npz arrays, a folder in
the official GTSRB test layout, or class sub-folders of images. Images come back float32 raw, resized to the
model's input."""
from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import jax.numpy as jnp
import numpy as np
from PIL import Image

from ncjax.core.printable import printable, quoted
from ncjax.data.preprocess import Preprocessing
from ncjax.errors import DataError
from ncjax.models.safe_files import check_hdf5_contained, check_regular_file, open_npz

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Budgets checked from declared sizes before anything is read: no clean set for a scan comes near them.
MAX_DATA_BYTES = 4 << 30
MAX_IMAGE_PIXELS = 50_000_000
# What reading a damaged file can raise from numpy, h5py, zipfile, PIL and csv; turned into one DataError.
_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, TypeError, IndexError, OverflowError, ZeroDivisionError,
                zipfile.BadZipFile, csv.Error, UnicodeDecodeError, Image.DecompressionBombError)


@dataclass(frozen=True)
class CleanImages:
    """Clean images read for a scan: (N, H, W, C) float32 at the model's input size, their labels where the data
    has them, whether they are raw 0..255 pixels (image files, uint8 arrays) that the preprocessing turns into
    model inputs or model inputs already (float arrays), and notes on what the reading assumed or changed."""

    images: np.ndarray
    labels: np.ndarray | None
    pixels: bool
    notes: tuple[str, ...] = ()

    def in_model_scale(self, preprocessing: Preprocessing) -> np.ndarray:
        """The images as the model takes them: raw pixels go through `preprocessing`, model inputs stay."""
        if not self.pixels:
            return self.images
        return np.asarray(preprocessing.to_model(jnp.asarray(self.images)))


def load_images(path: str | os.PathLike, image_shape: tuple[int, int, int], *, key: str | None = None) -> CleanImages:
    """The clean images at `path`, resized to `image_shape`, with labels where the data has them.

    .npz: array `key`, else `x_roi`, `x`, `X_test` or `images` (labels from `y`, `Y_test` or `labels`); .h5:
    `X_test`/`Y_test` as the reference's dataset (one-hot labels are turned into ints); a folder with
    GT-final_test.csv: the official GTSRB layout, each image cropped to its ROI (scaled by actual / recorded size);
    any other folder: one sub-folder of images per class (labelled by their names where every name is a number,
    else by their sorted order), or images alone (unlabelled). uint8 arrays and image files are raw pixels; float
    arrays are the model's inputs. Arrays laid out (N, C, H, W) are transposed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {str(path)!r}")
    try:
        read = _read_data(path, image_shape, key)
    except DataError:
        raise
    except _READ_ERRORS as e:
        raise DataError(f"cannot read the data {str(path)!r}: {type(e).__name__}: {printable(e, limit=200)}") from None
    images = _checked_images(read.images, path)
    pixels = path.is_dir() or images.dtype == np.uint8
    images, notes = _fit(images, image_shape, path)
    return CleanImages(images, _checked_labels(read.labels, len(images), path), pixels, (*read.notes, *notes))


@dataclass(frozen=True)
class _Read:
    images: Any
    labels: Any
    notes: tuple[str, ...] = ()


def _read_data(path: Path, image_shape, key: str | None) -> _Read:
    if path.is_dir():
        if (path / "GT-final_test.csv").exists():
            return _gtsrb_folder(path, image_shape)
        return _image_folder(path, image_shape)
    check_regular_file(str(path), error=DataError, what="data file")
    if path.suffix == ".npz":
        return _npz(path, key)
    if path.suffix in (".h5", ".hdf5"):
        return _h5(path, key)
    raise DataError(f"{str(path)!r}: unknown data format; give a .npz, a .h5 with X_test, or a folder of images.")


def _checked_images(images, path: Path) -> np.ndarray:
    """Real numbers, (N, H, W[, C]) with no empty axis."""
    images = np.asarray(images)
    if images.dtype.kind not in "biuf":
        raise DataError(f"{str(path)!r}: the images are of type {images.dtype}; give real numbers (uint8 or float "
                        "pixels).")
    if images.ndim not in (3, 4) or 0 in images.shape:
        raise DataError(f"{str(path)!r}: images have shape {images.shape}; expected (N, H, W, C) with no empty axis.")
    return images


def _checked_labels(labels, count: int, path: Path) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biu" or labels.shape != (count,):
        raise DataError(f"{str(path)!r}: the labels have shape {labels.shape} and type {labels.dtype}; expected "
                        f"{count} integers, one per image.")
    return labels.astype(np.int64)


def _npz(path: Path, key: str | None) -> _Read:
    with open_npz(str(path), error=DataError, what="data file", max_bytes=MAX_DATA_BYTES) as data:
        names = data.files
        name = key or next((k for k in ("x_roi", "x", "X_test", "images") if k in names), None)
        if name is None or name not in names:
            raise DataError(f"{str(path)!r} has arrays {_listed(names)}; name the images with --data-key.")
        label_name = next((k for k in ("y", "Y_test", "labels") if k in names), None)
        labels = data[label_name] if label_name is not None else None
        return _Read(data[name], _int_labels(labels))


def _h5(path: Path, key: str | None) -> _Read:
    try:
        with h5py.File(path, "r") as f:
            check_hdf5_contained(f, repr(str(path)), error=DataError, max_bytes=MAX_DATA_BYTES)
            name = key or ("X_test" if "X_test" in f else None)
            if name is None or name not in f or not isinstance(f[name], h5py.Dataset):
                raise DataError(f"{str(path)!r} has datasets {_listed(list(f))}; name the images with --data-key.")
            labels = np.asarray(f["Y_test"]) if "Y_test" in f else None
            return _Read(np.asarray(f[name]), _int_labels(labels))
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r} as HDF5: {e}") from e


def _listed(names: list[str]) -> str:
    """Names read from a data file, shown escaped: at most ten."""
    return "[" + ", ".join(quoted(name) for name in names[:10]) + (", ..." if len(names) > 10 else "") + "]"


def _int_labels(labels):
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf":
        raise DataError(f"the labels are of type {labels.dtype}; give integer class ids or one-hot rows.")
    if labels.ndim == 2:
        return labels.argmax(-1)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DataError("the labels are fractional or not finite; give integer class ids or one-hot rows.")
        return labels.astype(np.int64)
    return labels


# The picture mode that gives a model of C channels its images: grayscale models read images as "L".
IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _read(path: Path, channels: int, box=None, size=None) -> np.ndarray:
    if channels not in IMAGE_MODES:
        raise DataError(f"{str(path)!r}: the model takes {channels} channels; image files give 1 (L), 3 (RGB) or 4 "
                        "(RGBA). Give the images as an .npz array instead.")
    check_regular_file(str(path), error=DataError, what="image")
    with Image.open(path) as image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise DataError(f"{str(path)!r} is {image.width}x{image.height} pixels; refusing to decode an image that "
                            "large.")
        picture = image.convert(IMAGE_MODES[channels])
        if box is not None:
            picture = picture.crop(box)
        if size is not None:
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(picture, np.float32)
        return pixels[..., None] if pixels.ndim == 2 else pixels


def _gtsrb_folder(path: Path, image_shape) -> _Read:
    h, w, c = image_shape
    images, labels = [], []
    table, root = path / "GT-final_test.csv", path.resolve()
    check_regular_file(str(table), error=DataError, what="annotation file")
    with open(table, newline="") as f:
        for number, row in enumerate(csv.DictReader(f, delimiter=";"), start=2):
            try:
                file = _named_file(path, row["Filename"], f"{str(table)!r}, line {number}")
                if not file.exists():
                    continue
                check_regular_file(str(file), error=DataError, what="image")
                _check_inside(root, file)
                with Image.open(file) as image:
                    actual_w, actual_h = image.size
                sx, sy = actual_w / float(row["Width"]), actual_h / float(row["Height"])
                box = (float(row["Roi.X1"]) * sx, float(row["Roi.Y1"]) * sy,
                       (float(row["Roi.X2"]) + 1) * sx, (float(row["Roi.Y2"]) + 1) * sy)
                label = int(row["ClassId"])
            except DataError:
                raise
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
                raise DataError(f"{str(table)!r}, line {number}: {type(e).__name__}: {printable(e)}. The "
                                "official layout has Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId with "
                                "numbers.") from None
            images.append(_read(file, c, box, (w, h)))
            labels.append(label)
    if not images:
        raise DataError(f"{str(path)!r}: GT-final_test.csv names no image present in the folder.")
    return _Read(np.stack(images), np.asarray(labels, np.int64))


def _named_file(folder: Path, name, where: str) -> Path:
    """The file an annotation names: a plain file name in the annotation's folder, never a path elsewhere."""
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise DataError(f"{where}: Filename {quoted(name)} is not a plain file name; the annotation names images in "
                        "its own folder only, as GTSRB's does (00000.ppm).")
    return folder / name


def _check_inside(root: Path, file: Path) -> None:
    """Refuse an image that is a link to somewhere outside the data folder (`root`, resolved): ncjax reads only
    what it was handed."""
    if not file.resolve().is_relative_to(root):
        raise DataError(f"{quoted(str(file), limit=200)} is a link to a file outside the data folder "
                        f"{quoted(str(root), limit=200)}; copy the images into the folder (or give them as an .npz).")


def _image_folder(path: Path, image_shape) -> _Read:
    """Class sub-folders of images (labelled), or images alone (unlabelled)."""
    h, w, c = image_shape
    root = path.resolve()
    folders = sorted(p for p in path.iterdir() if p.is_dir())
    numbered = all(folder.name.isdigit() and len(folder.name) < 10 for folder in folders)
    names = {int(f.name) if numbered else index: f.name for index, f in enumerate(folders)}
    files = ([(file, label) for label, name in names.items() for file in _image_files(path / name, root)] if folders
             else [(file, None) for file in _image_files(path, root)])
    if not files:
        raise DataError(f"{str(path)!r} holds no images: give image files, class sub-folders of them, or "
                        "GTSRB's layout with GT-final_test.csv.")
    images = np.stack([_read(file, c, size=(w, h)) for file, _ in files])
    if not folders:
        return _Read(images, None, ("the folder has no class sub-folders, so the images carry no labels",))
    notes = () if numbered else (f"labels from the sub-folders' sorted names: {_mapping(names)}",)
    return _Read(images, np.asarray([label for _, label in files], np.int64), notes)


def _image_files(folder: Path, root: Path) -> list[Path]:
    files = [file for file in sorted(folder.iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES]
    for file in files:
        _check_inside(root, file)
    return files


def _mapping(names: dict[int, str]) -> str:
    shown = ", ".join(f"{label}={quoted(name, limit=40)}" for label, name in list(names.items())[:10])
    return shown + (f", ... ({len(names)} classes)" if len(names) > 10 else "")


def _fit(images: np.ndarray, image_shape, path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """The images as (N, H, W, C) float32 at the model's size, and notes on what was changed."""
    h, w, c = image_shape
    notes = []
    if images.ndim == 3 and c == 1:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{str(path)!r}: images have shape {images.shape}; expected (N, H, W, C).")
    # (N, C, H, W): the model's channel count second and a last axis no picture has as channels.
    if images.shape[-1] != c and images.shape[1] == c and images.shape[-1] not in IMAGE_MODES:
        notes.append(f"the arrays are laid out (N, C, H, W) {images.shape}; transposed to (N, H, W, C)")
        images = np.moveaxis(images, 1, -1)
    if images.shape[-1] != c:
        raise DataError(f"{str(path)!r}: images have shape {images.shape}, so {images.shape[-1]} channels; the model "
                        f"takes {c}. Give (N, H, W, {c}) or (N, {c}, H, W) arrays.")
    images = images.astype(np.float32)
    if images.shape[1:3] != (h, w):
        notes.append(f"resized from {images.shape[1]}x{images.shape[2]} to the model's {h}x{w}")
        import jax

        resized = [np.asarray(jax.image.resize(jnp.asarray(images[i:i + 512]), (len(images[i:i + 512]), *image_shape),
                                               "bilinear")) for i in range(0, len(images), 512)]
        images = np.concatenate(resized)
    return images, tuple(notes)
