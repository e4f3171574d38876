"""The searches a scan can run, each a set of pure functions over its own slot state; the engine runs any of them.

trigger: Neural Cleanse's smallest trigger per label (ncjax.search.step); margin: MM-BD's largest logit margin
per label (ncjax.search.margin). ScanConfig.search picks one.
"""
from __future__ import annotations

import typing
from collections.abc import Callable
from typing import NamedTuple

from ncjax.core.choices import check_choice
from ncjax.search.config import SearchKind
from ncjax.search.margin import MarginState, init_margin, margin_end_epoch, margin_step, margin_summary
from ncjax.search.step import SlotState, epoch_summary, init_slot, slot_end_epoch, slot_step

SearchState = SlotState | MarginState


class SearchFunctions(NamedTuple):
    """init(key, target, pool, config, image_shape) -> state; step(state, raw_batch, params, apply, config,
    image_shape) -> state; end_epoch(state, config, image_shape) -> state; summary(old, new, config) ->
    EpochSummary. States have target, pool and frozen(mask)."""

    init: Callable
    step: Callable
    end_epoch: Callable
    summary: Callable


SEARCHES = {
    "trigger": SearchFunctions(init_slot, slot_step, slot_end_epoch, epoch_summary),
    "margin": SearchFunctions(init_margin, margin_step, margin_end_epoch, margin_summary),
}


def search_functions(kind: SearchKind) -> SearchFunctions:
    check_choice(kind, typing.get_args(SearchKind), "search")
    return SEARCHES[kind]
