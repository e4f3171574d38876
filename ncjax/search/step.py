"""The optimizer step: written for one slot (one trigger search), vmapped over slots, jitted once per width."""
from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ncjax.core.choices import check_choice
from ncjax.search.adam import KerasAdamState, keras_adam
from ncjax.search.config import Regularization, ScanConfig
from ncjax.search.losses import attack_loss, attack_success
from ncjax.search.schedule import EpochLogs, EpochStats, ScheduleState, end_epoch, init_schedule
from ncjax.search.trigger import Trigger, init_trigger, stamp, trigger_mask, trigger_pattern

Apply = Callable[[Any, jax.Array], jax.Array]


class SlotState(NamedTuple):
    """Everything one slot carries between steps (the scan stacks a leading slot axis on each leaf)."""

    target: jax.Array  # () i32: the label the trigger sends images to
    pool: jax.Array  # () i32: the image pool its batches come from (0: every clean image)
    trigger: Trigger
    opt: KerasAdamState
    sums: EpochStats  # running sums over the current epoch's steps
    schedule: ScheduleState

    def frozen(self, mask: jax.Array) -> SlotState:
        """The same state with the lanes in `mask` marked finished."""
        return self._replace(schedule=self.schedule._replace(done=self.schedule.done | mask))


def make_optimizer(config: ScanConfig) -> optax.GradientTransformation:
    return keras_adam(config.learning_rate, config.beta_1, config.beta_2, config.adam_epsilon)


def init_slot(key: jax.Array, target: jax.Array, pool: jax.Array, config: ScanConfig,
              image_shape: tuple[int, int, int]) -> SlotState:
    """A slot's fresh state: random trigger, zero Adam moments, the schedule's starting cost."""
    trigger = init_trigger(key, image_shape, config.upsample)
    zero = jnp.zeros((), jnp.float32)
    return SlotState(target=jnp.asarray(target, jnp.int32), pool=jnp.asarray(pool, jnp.int32), trigger=trigger,
                     opt=make_optimizer(config).init(trigger), sums=EpochStats(ce=zero, reg=zero, loss=zero, asr=zero),
                     schedule=init_schedule(config, image_shape))


# L1 = sum |mask| over (H, W); L2 = sqrt(sum mask^2): the reference's norms over channels, divided by C.
REGULARIZERS = {
    "l1": lambda mask: jnp.sum(jnp.abs(mask)),
    "l2": lambda mask: jnp.sqrt(jnp.sum(jnp.square(mask))),
}


def regularizer(mask: jax.Array, kind: Regularization) -> jax.Array:
    """The mask-size term of the objective."""
    check_choice(kind, typing.get_args(Regularization), "regularization")
    return REGULARIZERS[kind](mask)


def slot_step(state: SlotState, raw_batch: jax.Array, model_params: Any, apply: Apply,
              config: ScanConfig, image_shape: tuple[int, int, int]) -> SlotState:
    """One Adam step of one slot's trigger on a batch of raw clean images (B, H, W, C)."""

    def objective(trigger: Trigger):
        mask = trigger_mask(trigger, image_shape, config.upsample)
        adv = stamp(raw_batch, mask, trigger_pattern(trigger))
        logits = apply(model_params, config.preprocessing.to_model(adv))
        ce = attack_loss(logits, state.target, config.loss)  # (B,)
        reg = regularizer(mask, config.regularization)
        per_sample = ce + state.schedule.cost * reg
        # Keras differentiates the per-sample loss vector, i.e. its sum over the batch.
        stats = EpochStats(ce=ce.mean(), reg=reg, loss=per_sample.mean(),
                           asr=attack_success(logits, state.target).mean())
        return per_sample.sum(), stats

    grads, stats = jax.grad(objective, has_aux=True)(state.trigger)
    updates, opt = make_optimizer(config).update(grads, state.opt)
    trigger = optax.apply_updates(state.trigger, updates)
    sums = jax.tree_util.tree_map(jnp.add, state.sums, stats)
    new = state._replace(trigger=trigger, opt=opt, sums=sums)
    # A finished slot is frozen: its lane may still be computed until the active set is compacted.
    return jax.tree_util.tree_map(lambda old, upd: jnp.where(state.schedule.done, old, upd), state, new)


class EpochSummary(NamedTuple):
    """What the host reads back after each epoch, one entry per lane."""

    done: jax.Array  # bool: finished (early stop or max_epochs)
    logs: Any  # the search's logs of the epoch: EpochLogs (means and schedule values) or MarginLogs


def slot_end_epoch(state: SlotState, config: ScanConfig, image_shape: tuple[int, int, int]) -> SlotState:
    """Close one slot's epoch: means of the step statistics, then the schedule; sums restart at 0."""
    n = config.steps_per_epoch
    stats = jax.tree_util.tree_map(lambda s: s / n, state.sums)
    mask = trigger_mask(state.trigger, image_shape, config.upsample)
    schedule = end_epoch(state.schedule, stats, mask, trigger_pattern(state.trigger), config)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, state.sums)
    return state._replace(sums=zeros, schedule=schedule)


def epoch_summary(old: SlotState, new: SlotState, config: ScanConfig) -> EpochSummary:
    """The summary of the epoch that took `old` (before its end) to `new` (after it)."""
    stats = jax.tree_util.tree_map(lambda s: s / config.steps_per_epoch, old.sums)
    logs = EpochLogs(ce=stats.ce, reg=stats.reg, loss=stats.loss, asr=stats.asr, reg_best=new.schedule.reg_best,
                     cost=old.schedule.cost)
    return EpochSummary(done=new.schedule.done, logs=logs)


def steps_per_pass(num_images: int, batch_size: int) -> int:
    """Steps of whole batches in one pass over the images (at least one)."""
    return max(num_images // batch_size, 1)


def pass_order(data_key: jax.Array, pass_index: jax.Array | int, num_images: int) -> jax.Array:
    """The seeded permutation of the images that pass `pass_index` draws its batches from, in order."""
    return jax.random.permutation(jax.random.fold_in(data_key, pass_index), num_images)


def batch_of_pass(order: jax.Array, step: jax.Array, per_pass: int, batch_size: int) -> jax.Array:
    """Indices of step `step`'s batch, given its pass's order (pass_order)."""
    return jax.lax.dynamic_slice(order, ((step % per_pass) * batch_size,), (batch_size,))


def draw_batch(data_key: jax.Array, step: jax.Array, num_images: int, batch_size: int) -> jax.Array:
    """Indices of step `step`'s batch: passes over a fresh seeded permutation of the images, whole batches
    only. Every slot that draws from all images sees the same batch at the same step (the reference draws per
    label)."""
    per_pass = steps_per_pass(num_images, batch_size)
    return batch_of_pass(pass_order(data_key, step // per_pass, num_images), step, per_pass, batch_size)


def draw_pool_batch(data_key: jax.Array, step: jax.Array, pool: jax.Array, pool_size: jax.Array,
                    batch_size: int) -> jax.Array:
    """Indices of step `step`'s batch from one pool: its first `pool_size` entries of `pool` (N,) are image
    indices, the rest padding. The same seeded permutation of N positions as draw_batch, padding filtered out
    (a stable filter, so a pool of all N images draws exactly draw_batch's batches); a pool smaller than a
    batch fills it by cycling through its permutation."""
    per_pass = jnp.maximum(pool_size // batch_size, 1)
    perm = jax.random.permutation(jax.random.fold_in(data_key, step // per_pass), pool.shape[0])
    order = perm[jnp.argsort(perm >= pool_size, stable=True)]
    positions = ((step % per_pass) * batch_size + jnp.arange(batch_size)) % pool_size
    return pool[order[positions]]
