"""MitigationProgress: what ncjax.mitigate's callback receives as the work goes on."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MitigationProgress:
    """`done` of `total` units of `stage` ("fine-tuning steps", "pruning steps") finished."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[MitigationProgress], None]
