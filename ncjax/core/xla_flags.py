"""Pick XLA:CPU flags before JAX initializes its backends.

jaxlib's default YNNPACK fusion on XLA:CPU makes the Neural Cleanse GTSRB network's 43-label trigger step
2.6x slower on a 2-core AVX2 CPU (measured: 4.2 s vs 1.6 s per step). ncjax turns it off unless the user
already set XLA_FLAGS, which is then left exactly as given. The flag only concerns the CPU backend.

XLA aborts the process on a flag it does not know, and jaxlib 0.8.0 does not know this one, so it is set
only for jaxlib versions known to accept it.
"""
from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from importlib import metadata

DISABLE_YNN_FUSION = "--xla_cpu_experimental_ynn_fusion_type="
# The oldest jaxlib seen to accept the flag (0.8.0 rejects it).
FIRST_JAXLIB_WITH_FLAG = (0, 9, 0)


def _jaxlib_version() -> tuple[int, ...] | None:
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def configure_xla_flags(
    environ: MutableMapping[str, str] = os.environ, *, jaxlib_version: tuple[int, ...] | None = None
) -> bool:
    """Turn YNNPACK fusion off when the user has not set XLA_FLAGS and jaxlib knows the flag; True if set."""
    if "XLA_FLAGS" in environ:
        return False
    version = jaxlib_version if jaxlib_version is not None else _jaxlib_version()
    if version is None or version < FIRST_JAXLIB_WITH_FLAG:
        return False
    environ["XLA_FLAGS"] = DISABLE_YNN_FUSION
    return True
