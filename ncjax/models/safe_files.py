"""What a file handed to ncjax may be, checked before its contents are read.

A model or data file is one regular file, of one format, that reads nothing but itself:
- special files (FIFOs, devices, sockets) are refused before they are opened: reading one can block forever
  or never end;
- a file that parses as two formats (an HDF5 file with a zip archive appended, say) is refused: Keras and
  ncjax could read different models from it, so a backdoored model could pass as its clean twin;
- HDF5 external links, soft links, external storage and virtual datasets are refused by name, before any
  data is read: each makes the HDF5 library read other files (/etc/passwd, another model's weights);
- datasets whose declared size exceeds a budget are refused before anything is allocated.
"""
from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import ModelFileError, NCJaxError, WriteError

# No classifier ncjax scans comes near this; a file declaring more is refused before it is read.
MAX_HDF5_BYTES = 4 << 30


def check_regular_file(path: str, *, error: type[NCJaxError] = ModelFileError, what: str = "model file") -> None:
    """Refuse anything but a regular file (symbolic links are followed), without opening it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise error(f"cannot read the {what} {path!r}: {e.strerror}.") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else \
            "not a regular file"
        raise error(f"the {what} {path!r} is {kind}; give a regular file.")


def read_regular_file(path: str, *, max_bytes: int, error: type[NCJaxError] = ModelFileError,
                      what: str = "model file") -> bytes:
    """The bytes of a regular file of at most `max_bytes`. Opened without blocking and checked on the open
    descriptor, so a FIFO or device swapped in after a check is still refused, never read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise error(f"cannot read the {what} {path!r}: {e.strerror}.") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"the {what} {path!r} is not a regular file; give a regular file.")
        data = file.read(max_bytes + 1) if info.st_size <= max_bytes else b""
        if info.st_size > max_bytes or len(data) > max_bytes:
            raise error(f"the {what} {path!r} is larger than the {max_bytes >> 30} GiB allowed; refused before it is "
                        "read.")
        return data


def file_formats(path: str) -> set[str]:
    """The container formats whose signatures `path` carries: "hdf5", "zip" (both for a polyglot)."""
    formats = set()
    if h5py.is_hdf5(path):
        formats.add("hdf5")
    if zipfile.is_zipfile(path):
        formats.add("zip")
    return formats


def check_one_format(path: str, formats: set[str]) -> None:
    if len(formats) > 1:
        raise ModelFileError(
            f"{path!r} is both an HDF5 file and a zip archive. Keras and ncjax could read two different models "
            "from it, so it is refused; re-save the model (model.save('model.h5') or 'model.keras')."
        )


def check_hdf5_contained(f: h5py.File, where: str, *, error: type[NCJaxError] = ModelFileError,
                         max_bytes: int = MAX_HDF5_BYTES) -> None:
    """Walk every link and dataset of `f` (iteratively: any depth) before reading any data; refuse links and
    storage that reach outside the file, and declared sizes beyond `max_bytes` in all."""
    total = 0
    stack: list[tuple[str, h5py.Group]] = [("/", f)]
    while stack:
        name, group = stack.pop()
        for key in group:
            child = f"{name.rstrip('/')}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise error(f"{where}: {quoted(child)} is an external link to {quoted(link.filename)}; a model file "
                            "must not read other files.")
            if isinstance(link, h5py.SoftLink):
                raise error(f"{where}: {quoted(child)} is a soft link to {quoted(link.path)}; Keras files hold none.")
            item = group.get(key)
            if isinstance(item, h5py.Group):
                stack.append((child, item))
            elif isinstance(item, h5py.Dataset):
                total += _dataset_bytes(item, child, where, error)
                if total > max_bytes:
                    raise error(f"{where}: the datasets declare more than {max_bytes >> 30} GiB (at {quoted(child)}); "
                                "no model ncjax scans is that large, so the file is refused before it is read.")


def _dataset_bytes(dataset: h5py.Dataset, name: str, where: str, error: type[NCJaxError]) -> int:
    if dataset.is_virtual:
        raise error(f"{where}: {quoted(name)} is a virtual dataset (it maps other datasets or files); refused.")
    if dataset.external:
        files = ", ".join(sorted({quoted(entry[0]) for entry in dataset.external})[:5])
        raise error(f"{where}: {quoted(name)} keeps its data in other files ({files}); a model file must not read "
                    "other files.")
    return int(np.prod(dataset.shape or (), dtype=np.float64)) * dataset.dtype.itemsize


@contextmanager
def open_npz(path: str, *, error: type[NCJaxError], what: str, max_bytes: int) -> Iterator[np.lib.npyio.NpzFile]:
    """An .npz archive, opened without pickles: refused unless it is a regular file holding a zip archive
    (np.load would read a bare .npy or a pickle whole) whose arrays' headers declare at most `max_bytes` in all
    (numpy allocates what a header declares before reading), and closed even when numpy fails on a damaged one
    (given a path, numpy leaks the handle then)."""
    check_regular_file(path, error=error, what=what)
    if not zipfile.is_zipfile(path):
        raise error(f"the {what} {path!r} is not an .npz archive (np.savez writes one); it may be empty, "
                    "truncated, a bare .npy array or another format.")
    with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
        declared = sum(_npy_declared_bytes(data.zip, member) for member in data.zip.namelist()
                       if member.endswith(".npy"))
        if declared > max_bytes:
            raise error(f"the {what} {path!r} declares {declared / 2**30:.1f} GiB of arrays, more than the "
                        f"{max_bytes >> 30} GiB allowed; refused before anything is allocated.")
        yield data


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside `path` to write the whole file to; on success it is renamed into place, so a
    reader never sees half a file and an interrupted write leaves the previous file as it was; on failure the
    temporary file is removed. A failed write (a full disk, a folder made read-only) is a WriteError, which
    still carries the system's reason in `strerror`."""
    tmp = os.fspath(path) + ".tmp"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if not isinstance(e, OSError) or isinstance(e, NCJaxError):
            raise
        error = WriteError(f"cannot write {quoted(os.fspath(path), limit=200)} ({e.strerror or type(e).__name__}); "
                           "the file there before, if any, is kept as it was.")
        error.strerror = e.strerror  # for callers that add what to do next
        raise error from None


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """A text file (a report, a table), written whole or not at all."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def save_png_atomic(image: Any, path: str | os.PathLike) -> None:
    """A PIL image as a PNG file, written whole or not at all (the temporary name has no suffix to go by)."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def write_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """np.savez, atomically (given an open file, np.savez does not append .npz to the name)."""
    named: dict[str, Any] = dict(arrays)  # np.savez's stub reads keywords as its own options
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **named)


def _npy_declared_bytes(archive: zipfile.ZipFile, member: str) -> float:
    """The size an .npy member's header declares."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    return float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
