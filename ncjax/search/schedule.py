"""The reference's per-label schedule, applied at the end of each epoch: best-trigger tracking, early
stopping, and the cost that balances attack loss against mask size. Pure and elementwise, so it vmaps."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ncjax.search.config import ScanConfig


class ScheduleState(NamedTuple):
    """One label's schedule (shapes for one label; the scan stacks a leading label axis)."""

    cost: jax.Array  # () f32
    cost_set_counter: jax.Array  # () i32: successful epochs while cost == 0
    cost_up_counter: jax.Array  # () i32
    cost_down_counter: jax.Array  # () i32
    cost_up_flag: jax.Array  # () bool: cost went up at least once
    cost_down_flag: jax.Array  # () bool: cost went down at least once
    reg_best: jax.Array  # () f32, inf until a trigger reaches the attack-success threshold
    asr_best: jax.Array  # () f32: the epoch attack success when reg_best was kept
    best_mask: jax.Array  # (H, W)
    best_pattern: jax.Array  # (H, W, C)
    early_stop_counter: jax.Array  # () i32
    early_stop_reg_best: jax.Array  # () f32
    epochs: jax.Array  # () i32: epochs run
    done: jax.Array  # () bool
    early_stopped: jax.Array  # () bool


class EpochLogs(NamedTuple):
    """The values logged at the end of every epoch. In a ScanResult each is (slots, max_epochs), NaN after a
    slot's last epoch; the compiled step returns one per lane for the epoch just ended (ncjax.search.step)."""

    ce: Any
    reg: Any
    loss: Any
    asr: Any
    reg_best: Any  # inf until a trigger reached the attack-success threshold
    cost: Any  # the cost in force during the epoch


class EpochStats(NamedTuple):
    """Means over one epoch's steps, computed before each step's update as the reference logs them."""

    ce: jax.Array  # () f32
    reg: jax.Array  # () f32
    loss: jax.Array  # () f32
    asr: jax.Array  # () f32


def init_schedule(config: ScanConfig, image_shape: tuple[int, int, int]) -> ScheduleState:
    h, w, c = image_shape
    i0, f0 = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.bool_)
    inf = jnp.asarray(jnp.inf, jnp.float32)
    cost = jnp.asarray(0.0 if config.cost_starts_at_zero else config.init_cost, jnp.float32)
    return ScheduleState(
        cost=cost, cost_set_counter=i0, cost_up_counter=i0, cost_down_counter=i0, cost_up_flag=f0,
        cost_down_flag=f0, reg_best=inf, asr_best=jnp.zeros((), jnp.float32),
        best_mask=jnp.zeros((h, w), jnp.float32), best_pattern=jnp.zeros((h, w, c), jnp.float32),
        early_stop_counter=i0, early_stop_reg_best=inf, epochs=i0, done=f0, early_stopped=f0,
    )


def end_epoch(state: ScheduleState, stats: EpochStats, mask: jax.Array, pattern: jax.Array,
              config: ScanConfig) -> ScheduleState:
    """The reference's end-of-epoch logic (visualizer.py), in its order; a finished label stays frozen."""
    threshold = config.attack_success_threshold
    success = stats.asr >= threshold
    # 1. Keep the trigger as it stands after this epoch when it succeeds with a smaller mean regularizer.
    improve = success & (stats.reg < state.reg_best)
    reg_best = jnp.where(improve, stats.reg, state.reg_best)
    asr_best = jnp.where(improve, stats.asr, state.asr_best)
    best_mask = jnp.where(improve, mask, state.best_mask)
    best_pattern = jnp.where(improve, pattern, state.best_pattern)
    # 2. Early stop: only once a trigger was found, the cost went both ways, and no progress for a while.
    es_counter, es_best, stop = state.early_stop_counter, state.early_stop_reg_best, jnp.zeros((), jnp.bool_)
    if config.early_stop:
        found = jnp.isfinite(reg_best)
        stalled = reg_best >= config.early_stop_threshold * es_best
        es_counter = jnp.where(found, jnp.where(stalled, es_counter + 1, 0), es_counter)
        es_best = jnp.minimum(reg_best, es_best)
        stop = state.cost_up_flag & state.cost_down_flag & (es_counter >= config.stop_patience)
    # 3. Cost: set to init_cost after `patience` successes at 0, then x up / ÷ up^1.5 after `patience`
    #    successful / failed epochs in a row. The reference skips this on the epoch it stops.
    cost, up, down = state.cost, state.cost_up_counter, state.cost_down_counter
    up_flag, down_flag = state.cost_up_flag, state.cost_down_flag
    at_zero = (cost == 0) & success
    set_counter = jnp.where(at_zero, state.cost_set_counter + 1, 0)
    initialize = at_zero & (set_counter >= config.patience)
    cost = jnp.where(initialize, config.init_cost, cost)
    up, down = jnp.where(initialize, 0, up), jnp.where(initialize, 0, down)
    up_flag, down_flag = up_flag & ~initialize, down_flag & ~initialize
    up, down = jnp.where(success, up + 1, 0), jnp.where(success, 0, down + 1)
    go_up = up >= config.patience
    go_down = ~go_up & (down >= config.patience)
    cost = jnp.where(go_up, cost * config.cost_multiplier, cost)
    cost = jnp.where(go_down, cost / config.cost_multiplier**1.5, cost)
    up, down = jnp.where(go_up, 0, up), jnp.where(go_down, 0, down)
    up_flag, down_flag = up_flag | go_up, down_flag | go_down
    keep = lambda old, new: jnp.where(stop, old, new)
    epochs = state.epochs + 1
    updated = ScheduleState(
        cost=keep(state.cost, cost), cost_set_counter=keep(state.cost_set_counter, set_counter),
        cost_up_counter=keep(state.cost_up_counter, up), cost_down_counter=keep(state.cost_down_counter, down),
        cost_up_flag=keep(state.cost_up_flag, up_flag), cost_down_flag=keep(state.cost_down_flag, down_flag),
        reg_best=reg_best, asr_best=asr_best, best_mask=best_mask, best_pattern=best_pattern,
        early_stop_counter=es_counter, early_stop_reg_best=es_best, epochs=epochs,
        done=stop | (epochs >= config.max_epochs), early_stopped=stop,
    )
    return jax.tree_util.tree_map(lambda old, new: jnp.where(state.done, old, new), state, updated)
