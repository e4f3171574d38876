"""Faults a run meets on the way: a disk that fills up while a file is written."""
from __future__ import annotations

import errno
import os


def fill_disk_at(monkeypatch, name: str) -> list[str]:
    """From now on, finishing a file called `name` fails as a full disk does (the whole file was to be renamed
    into place; the error comes where writing it would run out of space). Returns the paths it refused."""
    real_replace, refused = os.replace, []

    def replace(source, target, *args, **kwargs):
        if os.path.basename(os.fspath(target)) == name:
            refused.append(os.fspath(target))
            with open(source, "r+b") as half:  # a full disk leaves the temporary file cut short
                half.truncate(max(os.path.getsize(source) // 2, 0))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return refused
