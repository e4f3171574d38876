"""MitigationProgress: what ncjax.mitigate's callback receives as the work goes on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class MitigationProgress:
    """`done` of `total` units of `stage` ("fine-tuning steps", "pruning steps") finished."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[MitigationProgress], None]
