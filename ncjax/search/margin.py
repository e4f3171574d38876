"""The maximum-margin search of one label (MM-BD: Wang, Miller and Kesidis, IEEE S&P 2024): an input image that
makes the label's logit exceed every other label's by as much as the model allows.

The image is free in the valid raw range through a tanh (image = (tanh(w) / (2 - eps) + 0.5) * 255, as the
trigger's pattern is), so no clipping stops its gradient; no clean image enters the objective. A backdoor target's
largest margin tends to be abnormally large (ncjax.verdict.margin reads it). Written for one slot, vmapped over
slots like the trigger search (ncjax.search.step); the state's target, pool and done play the same parts.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ncjax.search.adam import KerasAdamState
from ncjax.search.config import ScanConfig
from ncjax.search.step import Apply, EpochSummary, make_optimizer
from ncjax.search.trigger import TANH_EPSILON

START_SCALE = 0.5  # a random start is tanh(N(0, START_SCALE^2)) in tanh space: mid-grey images with noise


class MarginLogs(NamedTuple):
    """Logged at the end of every epoch (in a MarginResult each is (slots, max_epochs), NaN after the last)."""

    margin: Any  # mean over the epoch's steps of the margin before each step's update
    best: Any  # the largest margin reached so far


class MarginState(NamedTuple):
    """Everything one maximum-margin search carries between steps (the scan stacks a slot axis on each leaf)."""

    target: jax.Array  # () i32: the label whose margin is maximized
    pool: jax.Array  # () i32: unused by this search (kept so the engine treats every search alike)
    image_tanh: jax.Array  # (H, W, C): the input, in tanh space
    opt: KerasAdamState
    margin_sum: jax.Array  # () f32: sum of the margins over the current epoch's steps
    best: jax.Array  # () f32: the largest margin reached, -inf before the first step
    best_image: jax.Array  # (H, W, C) raw pixels: the input that reached it
    epochs: jax.Array  # () i32: epochs run
    done: jax.Array  # () bool

    def frozen(self, mask: jax.Array) -> MarginState:
        """The same state with the lanes in `mask` marked finished."""
        return self._replace(done=self.done | mask)


def image_from_tanh(image_tanh: jax.Array) -> jax.Array:
    """Raw pixels in [0, 255] from the tanh-space parameters."""
    return (jnp.tanh(image_tanh) / (2 - TANH_EPSILON) + 0.5) * 255.0


def logit_margin(logits: jax.Array, target: jax.Array) -> jax.Array:
    """logits[target] - the largest other logit, for logits (K,)."""
    others = jnp.where(jnp.arange(logits.shape[-1]) == target, -jnp.inf, logits)
    return logits[target] - others.max()


def init_margin(key: jax.Array, target: jax.Array, pool: jax.Array, config: ScanConfig,
                image_shape: tuple[int, int, int]) -> MarginState:
    """A fresh search from a random image."""
    image_tanh = jax.random.normal(key, image_shape) * START_SCALE
    zero = jnp.zeros((), jnp.float32)
    return MarginState(target=jnp.asarray(target, jnp.int32), pool=jnp.asarray(pool, jnp.int32),
                       image_tanh=image_tanh, opt=make_optimizer(config).init(image_tanh), margin_sum=zero,
                       best=jnp.asarray(-jnp.inf, jnp.float32), best_image=image_from_tanh(image_tanh),
                       epochs=jnp.zeros((), jnp.int32), done=jnp.zeros((), jnp.bool_))


def margin_step(state: MarginState, raw_batch: jax.Array, model_params, apply: Apply, config: ScanConfig,
                image_shape: tuple[int, int, int]) -> MarginState:
    """One Adam step up the label's margin; `raw_batch` (the clean images) is not used."""
    del raw_batch, image_shape

    def objective(image_tanh):
        raw = image_from_tanh(image_tanh)
        logits = apply(model_params, config.preprocessing.to_model(raw[None]))[0]
        margin = logit_margin(logits, state.target)
        return -margin, (margin, raw)

    grads, (margin, raw) = jax.grad(objective, has_aux=True)(state.image_tanh)
    updates, opt = make_optimizer(config).update(grads, state.opt)
    better = margin > state.best
    new = state._replace(image_tanh=optax.apply_updates(state.image_tanh, updates), opt=opt,
                         margin_sum=state.margin_sum + margin, best=jnp.where(better, margin, state.best),
                         best_image=jnp.where(better, raw, state.best_image))
    return jax.tree_util.tree_map(lambda old, upd: jnp.where(state.done, old, upd), state, new)


def margin_end_epoch(state: MarginState, config: ScanConfig, image_shape: tuple[int, int, int]) -> MarginState:
    """Count the epoch; a search ends after max_epochs (no early stop: the margin is read where it got to)."""
    del image_shape
    epochs = jnp.where(state.done, state.epochs, state.epochs + 1)
    return state._replace(margin_sum=jnp.zeros_like(state.margin_sum), epochs=epochs,
                          done=state.done | (epochs >= config.max_epochs))


def margin_summary(old: MarginState, new: MarginState, config: ScanConfig) -> EpochSummary:
    """The summary of the epoch that took `old` (before its end) to `new`."""
    return EpochSummary(done=new.done, logs=MarginLogs(margin=old.margin_sum / config.steps_per_epoch,
                                                       best=new.best))
