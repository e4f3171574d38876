"""The host-side results of a scan, filled in as slots finish, and saved in its checkpoints: SearchOutputs holds
what every search kind records (finished slots, epochs, per-epoch logs, step counts); ScanOutputs adds the
trigger search's masks and patterns (ncjax.scan.margin_outputs the margin search's inputs)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ncjax.scan.checkpoint import check_arrays, invalid
from ncjax.scan.result import EpochLogs, ScanResult
from ncjax.scan.slots import Slot
from ncjax.search.config import ScanConfig
from ncjax.search.step import EpochSummary, SlotState
from ncjax.search.trigger import Trigger, trigger_mask, trigger_pattern


class SearchOutputs:
    """Per-slot results in slot order; `position` below is a slot's index in the scan's slot list. A subclass
    names its per-slot arrays (PER_SLOT, beside finished and epochs) and its logs (LOGGED), and harvests them."""

    PER_SLOT: tuple[str, ...] = ()
    LOGGED: tuple[str, ...] = ()

    def __init__(self, slots: Sequence[Slot], image_shape: tuple[int, int, int], config: ScanConfig):
        n, (h, w, c), e = len(slots), image_shape, config.max_epochs
        self.slots, self.config, self.image_shape = tuple(slots), config, (h, w, c)
        self.finished = np.zeros(n, bool)
        self.epochs = np.zeros(n, np.int64)
        self.logs = {name: np.full((n, e), np.nan, np.float32) for name in self.LOGGED}
        self.label_steps = 0  # steps of slots still searching: the work a plain loop would do
        self.slot_steps = 0  # steps computed, frozen and padding lanes included
        self.host_time_s = 0.0  # the host's own work between epochs, this process (not checkpointed)

    def _per_slot(self) -> tuple[str, ...]:
        return ("finished", "epochs", *self.PER_SLOT)

    def state(self) -> dict[str, np.ndarray]:
        """Everything this object holds, as arrays, for a checkpoint."""
        arrays = {name: getattr(self, name) for name in self._per_slot()}
        arrays |= {f"log_{name}": values for name, values in self.logs.items()}
        arrays["steps"] = np.asarray([self.label_steps, self.slot_steps], np.int64)
        return arrays

    def load(self, arrays: dict[str, np.ndarray], path: str | os.PathLike) -> None:
        """Restore what `state` returned, once it is checked whole: the same arrays, and consistent."""
        check_arrays(arrays, self.state(), path, "results")
        problems = self._problems(arrays)
        if problems:
            raise invalid(path, "; ".join(problems))
        self.label_steps, self.slot_steps = (int(x) for x in arrays["steps"])
        for name in self._per_slot():
            setattr(self, name, arrays[name].copy())
        for name in self.LOGGED:
            self.logs[name] = arrays[f"log_{name}"].copy()

    def _problems(self, arrays: dict[str, np.ndarray]) -> list[str]:
        """What a scan writes always satisfies: the conditions a saved state breaks, in words."""
        logged = _epochs_logged(arrays[f"log_{self.LOGGED[0]}"])
        finished, epochs = arrays["finished"], arrays["epochs"]
        label_steps, slot_steps = (int(x) for x in arrays["steps"])
        problems = []
        if np.any(finished & ((epochs < 1) | (epochs > self.config.max_epochs) | (logged != epochs))):
            problems.append("finished searches whose epochs and logs disagree")
        if np.any(~finished & (epochs != 0)):
            problems.append("unfinished searches with results")
        if label_steps != int(logged.sum()) * self.config.steps_per_epoch or slot_steps < label_steps:
            problems.append("step counts that do not match the logs")
        return problems

    def harvest(self, states: Any, positions: list[int], lanes: list[int], summary: EpochSummary) -> None:
        """Copy the results of the finished `lanes` to the host (`summary`: the epoch they finished in)."""
        raise NotImplementedError

    def result(self, *, wall: float, compile_time: float, compile_count: int, compile_background: float,
               host_time: float) -> Any:
        """The scan's result, data only."""
        raise NotImplementedError

    def logged_epochs(self) -> np.ndarray:
        """(slots,) the epochs logged so far per slot."""
        return _epochs_logged(self.logs[self.LOGGED[0]])

    def record_epoch(self, positions: list[int], epoch: int, summary: EpochSummary, steps_per_epoch: int) -> list[int]:
        """Log the epoch of the lanes still searching; returns those lanes."""
        active = [lane for lane, p in enumerate(positions) if p >= 0 and not self.finished[p]]
        self.slot_steps += len(positions) * steps_per_epoch
        self.label_steps += len(active) * steps_per_epoch
        for lane in active:
            for name in self.LOGGED:
                self.logs[name][positions[lane], epoch] = getattr(summary.logs, name)[lane]
        return active


def _epochs_logged(log: np.ndarray) -> np.ndarray:
    """(slots,) the epochs a (slots, max_epochs) log holds per slot: its entries that are not NaN."""
    return (~np.isnan(log)).sum(axis=1)


class ScanOutputs(SearchOutputs):
    """The trigger search's results: each slot's kept mask and pattern and its schedule's end."""

    PER_SLOT = ("masks", "patterns", "asr", "reached", "early_stopped", "final_cost")
    LOGGED = EpochLogs._fields

    def __init__(self, slots: Sequence[Slot], image_shape: tuple[int, int, int], config: ScanConfig):
        super().__init__(slots, image_shape, config)
        n, (h, w, c) = len(slots), image_shape
        self.masks = np.zeros((n, h, w), np.float32)
        self.patterns = np.zeros((n, h, w, c), np.float32)
        self.asr = np.zeros(n, np.float32)
        self.reached = np.zeros(n, bool)
        self.early_stopped = np.zeros(n, bool)
        self.final_cost = np.zeros(n, np.float32)

    def harvest(self, states: SlotState, positions: list[int], lanes: list[int], summary: EpochSummary) -> None:
        """Copy the results of the finished `lanes` to the host (`summary`: the epoch they finished in)."""
        # The whole slot axis in one read, picked apart on the host: indexing on the device would compile a gather
        # per leaf for every (width, count) that finishes (on a GPU, over a hundred small compiles per scan).
        schedule, trigger = jax.tree_util.tree_map(lambda a: np.asarray(a)[lanes],
                                                   jax.device_get((states.schedule, states.trigger)))
        for j, lane in enumerate(lanes):
            p = positions[lane]
            reached = bool(np.isfinite(schedule.reg_best[j]))
            if reached:
                mask, pattern, asr = schedule.best_mask[j], schedule.best_pattern[j], schedule.asr_best[j]
            else:  # the reference returns the final trigger when none succeeded
                final = Trigger(trigger.mask_tanh[j], trigger.pattern_tanh[j])
                mask = np.asarray(trigger_mask(final, self.image_shape, self.config.upsample))
                pattern = np.asarray(trigger_pattern(final))
                asr = summary.logs.asr[lane]
            self.masks[p], self.patterns[p], self.asr[p], self.reached[p] = mask, pattern, asr, reached
            self.epochs[p] = int(schedule.epochs[j])
            self.early_stopped[p] = bool(schedule.early_stopped[j])
            self.final_cost[p] = float(schedule.cost[j])
            self.finished[p] = True

    def _problems(self, arrays: dict[str, np.ndarray]) -> list[str]:
        problems = super()._problems(arrays)
        unfinished = "unfinished searches with results"
        if np.any(~arrays["finished"] & arrays["reached"]) and unfinished not in problems:
            problems.append(unfinished)
        slack = 1e-3  # the tanh parametrization rounds a saturated mask to -6e-8 in float32
        if not (np.all((arrays["masks"] >= -slack) & (arrays["masks"] <= 1 + slack))
                and np.all((arrays["patterns"] >= -slack) & (arrays["patterns"] <= 255 + slack))):
            problems.append("masks or patterns out of range")
        return problems

    def result(self, *, wall: float, compile_time: float, compile_count: int, compile_background: float,
               host_time: float) -> ScanResult:
        return ScanResult(
            labels=np.asarray([s.target for s in self.slots], np.int64), masks=self.masks, patterns=self.patterns,
            l1_norms=np.abs(self.masks).sum(axis=(1, 2)), attack_success=self.asr, reached_threshold=self.reached,
            epochs=self.epochs, early_stopped=self.early_stopped, final_cost=self.final_cost,
            logs=EpochLogs(**self.logs), config=self.config, loss=self.config.loss, wall_time_s=wall,
            compile_time_s=compile_time, label_steps=self.label_steps, slot_steps=self.slot_steps, slots=self.slots,
            compile_count=compile_count, compile_background_s=compile_background, host_time_s=host_time,
        )
