"""sha256 digests of what a scan read, so a report names exactly which model and data it examined."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str | None:
    """The sha256 of a file, or of a folder's files (their relative names and contents, in sorted order); None for
    a path that is neither."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        _add_file(digest, path)
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            _add_file(digest, file)
    else:
        return None
    return digest.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """The sha256 of an array's shape, type and bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.shape}{array.dtype.str}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _add_file(digest, path: Path) -> None:
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
