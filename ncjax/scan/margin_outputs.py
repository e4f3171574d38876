"""MarginOutputs: the maximum-margin search's results on the host, filled in as searches finish."""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from ncjax.scan.margin_result import MarginResult
from ncjax.scan.outputs import SearchOutputs
from ncjax.scan.slots import Slot
from ncjax.search.config import ScanConfig
from ncjax.search.margin import MarginLogs, MarginState
from ncjax.search.step import EpochSummary


class MarginOutputs(SearchOutputs):
    """Each search's largest margin and the input that reached it."""

    PER_SLOT = ("margins", "inputs")
    LOGGED = MarginLogs._fields

    def __init__(self, slots: Sequence[Slot], image_shape: tuple[int, int, int], config: ScanConfig):
        super().__init__(slots, image_shape, config)
        self.margins = np.full(len(slots), -np.inf, np.float32)
        self.inputs = np.zeros((len(slots), *image_shape), np.float32)

    def harvest(self, states: MarginState, positions: list[int], lanes: list[int], summary: EpochSummary) -> None:
        """Copy the results of the finished `lanes` to the host (one read of the slot axis)."""
        del summary
        best, image, epochs = (np.asarray(a)[lanes] for a in
                               jax.device_get((states.best, states.best_image, states.epochs)))
        for j, lane in enumerate(lanes):
            p = positions[lane]
            self.margins[p], self.inputs[p], self.epochs[p] = best[j], image[j], int(epochs[j])
            self.finished[p] = True

    def _problems(self, arrays: dict[str, np.ndarray]) -> list[str]:
        problems = super()._problems(arrays)
        finished = arrays["finished"]
        if not np.all(np.isfinite(arrays["margins"][finished])):
            problems.append("finished searches without a margin")
        if not np.all((arrays["inputs"] >= -1e-3) & (arrays["inputs"] <= 255 + 1e-3)):
            problems.append("inputs out of range")
        return problems

    def result(self, *, wall: float, compile_time: float, compile_count: int, compile_background: float,
               host_time: float) -> MarginResult:
        return MarginResult(
            labels=np.asarray([s.target for s in self.slots], np.int64), margins=self.margins, inputs=self.inputs,
            epochs=self.epochs, logs=MarginLogs(**self.logs), config=self.config, wall_time_s=wall,
            compile_time_s=compile_time, label_steps=self.label_steps, slot_steps=self.slot_steps, slots=self.slots,
            compile_count=compile_count, compile_background_s=compile_background, host_time_s=host_time,
        )
