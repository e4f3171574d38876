"""One run per output folder: a run holds its folder while it writes there, and a second process asking for it
is refused at once instead of mixing or deleting the first one's files.

The hold is the operating system's advisory lock (flock) on OUT/.ncjax.lock, so it ends with the process that
took it, however that process ends: a killed run leaves no lock behind. Within one process a folder may be held
again (the command line holds it, then the pipeline it calls).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ncjax.core.printable import printable, quoted
from ncjax.errors import UsageError

LOCK_FILE = ".ncjax.lock"
_held: dict[Path, tuple[IO[str], int]] = {}  # this process's holds: the open lock file and how many times held
_registry = threading.Lock()


@contextmanager
def hold_out(folder: Path, *, what: str = "the output folder") -> Iterator[None]:
    """Hold `folder` for the duration of the block; UsageError at once if another process holds it."""
    key = Path(os.path.realpath(folder))
    with _registry:
        if key in _held:
            handle, count = _held[key]
            _held[key] = (handle, count + 1)
        else:
            _held[key] = (_take(key, what), 1)
    try:
        yield
    finally:
        with _registry:
            handle, count = _held[key]
            if count > 1:
                _held[key] = (handle, count - 1)
            else:
                del _held[key]
                handle.close()  # closing the file releases the lock


def _take(folder: Path, what: str) -> IO[str]:
    try:
        import fcntl
    except ImportError:  # no flock on this platform: one run per folder is then the user's to keep
        return open(os.devnull, "a")
    path = folder / LOCK_FILE
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot open {quoted(str(path), limit=200)} to hold {what}: {e.strerror or e}.") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = printable(handle.read(200).strip(), limit=120) or "a process that wrote no details"
        handle.close()
        raise UsageError(f"{what} {quoted(str(folder), limit=200)} is in use by another ncjax run ({holder}); wait "
                         "for it to end, or choose another folder.") from None
    except OSError:  # a file system without locks (some network mounts): go on unheld, as without flock
        return handle
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle
