"""Compiling ahead: executables the scan will need later, built in background threads while the device runs.

On a GPU a scan of the paper's schedule compiles its step at every power-of-two width the compaction visits,
several seconds each (34 of 68 s on an H200) that a scan would wait for when it got there. The widths are
known once the first one runs, and the compiler mostly runs outside Python's lock, so they can be built while
the device is busy with the first width's epochs.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax

# Threads for background compiles: the compiler runs several passes on threads of its own, and the host also
# feeds the device; a quarter of the cores (at least one) leaves room for both.
MAX_WORKERS = max(1, (os.cpu_count() or 2) // 4)


def abstract(tree: Any, *, width: int | None = None) -> Any:
    """Each array leaf as a ShapeDtypeStruct with its sharding, the leading axis set to `width` if given, so it
    can be lowered for without reading the array (which a later call may donate)."""
    def one(a):
        shape = a.shape if width is None else (width,) + tuple(a.shape[1:])
        sharding = getattr(a, "sharding", None) if getattr(a, "committed", True) else None
        return jax.ShapeDtypeStruct(shape, a.dtype, sharding=sharding, weak_type=bool(getattr(a, "weak_type", False)))
    return jax.tree_util.tree_map(one, tree)


class Ahead:
    """Background builds keyed like the caller's cache: `submit(key, build)`, later `take(key)`."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.seconds = 0.0  # compile seconds spent in the background threads

    def submit(self, key: Hashable, build: Callable[[], Any]) -> None:
        if key in self._pending:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="ncjax-compile")
        self._pending[key] = self._pool.submit(self._timed, build)

    def _timed(self, build: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        executable = build()
        with self._lock:
            self.seconds += time.perf_counter() - start
        return executable

    def pending(self, key: Hashable) -> bool:
        return key in self._pending

    def take(self, key: Hashable) -> Any:
        """The executable built for `key` (waiting for it if it is still compiling); raises what the build raised."""
        return self._pending.pop(key).result()

    def close(self) -> None:
        """Drop the builds not started; the ones compiling finish in their threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending.clear()
