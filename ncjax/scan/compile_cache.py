"""JAX's persistent compilation cache for scans: the step compiled once per model architecture, width and
settings is kept on disk, so a second scan of the same architecture (another run, another model of a sweep,
the next model of an audit) loads it instead of compiling again.

`python -m ncjax.run` turns it on by default in a user cache folder (NCJAX_COMPILE_CACHE, else
$XDG_CACHE_HOME/ncjax/jax-compile, else ~/.cache/ncjax/jax-compile); `--no-compile-cache` turns it off. The
library leaves JAX's settings alone unless asked: call `enable_compile_cache()`. A folder the user already
gave JAX (jax_compilation_cache_dir) is kept as it is.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

logger = logging.getLogger(__name__)
CACHE_ENV = "NCJAX_COMPILE_CACHE"


def default_compile_cache_dir() -> Path:
    """NCJAX_COMPILE_CACHE, else the user's cache folder's ncjax/jax-compile."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ncjax" / "jax-compile"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Keep compiled steps in `path` (default: default_compile_cache_dir()) and load them from there; returns the
    folder in use, or None where it cannot be created (then nothing is cached, with a logged warning).

    Every compile is kept, not only those over JAX's default 1 s: a CPU step compiles in under a second per
    width, and a scan compiles several widths.
    """
    chosen = _cache_dir()
    if chosen and path is None:
        return Path(chosen)  # the user's own choice
    folder = Path(path).expanduser() if path is not None else default_compile_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        logger.warning("compile cache off: cannot create %s (%s)", folder, e)
        return None
    if chosen != str(folder):
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        compilation_cache.reset_cache()  # JAX decides once per process whether to use a cache: decide again
    return folder


def disable_compile_cache() -> None:
    """Compile everything afresh in this process (the cache's files stay where they are)."""
    if _cache_dir() is not None:
        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()


def _cache_dir() -> str | None:
    """JAX's jax_compilation_cache_dir flag."""
    return jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]  # flags are set as attributes at run time
