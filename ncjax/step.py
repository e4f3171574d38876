"""The optimizer step: written for one label, vmapped over labels, jitted once per label-axis width."""
from __future__ import annotations

import typing
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ncjax.adam import KerasAdamState, keras_adam
from ncjax.choices import check_choice
from ncjax.config import Regularization, ScanConfig
from ncjax.losses import attack_loss, attack_success
from ncjax.schedule import EpochStats, ScheduleState, end_epoch, init_schedule
from ncjax.trigger import Trigger, init_trigger, stamp, trigger_mask, trigger_pattern

Apply = Callable[[Any, jax.Array], jax.Array]


class LabelState(NamedTuple):
    """Everything one label carries between steps (the scan stacks a leading label axis on each leaf)."""

    target: jax.Array  # () i32: the label
    trigger: Trigger
    opt: KerasAdamState
    sums: EpochStats  # running sums over the current epoch's steps
    schedule: ScheduleState


def make_optimizer(config: ScanConfig) -> optax.GradientTransformation:
    return keras_adam(config.learning_rate, config.beta_1, config.beta_2, config.adam_epsilon)


def init_label(key: jax.Array, target: jax.Array, config: ScanConfig,
               image_shape: tuple[int, int, int]) -> LabelState:
    """A label's fresh state: random trigger, zero Adam moments, the schedule's starting cost."""
    trigger = init_trigger(key, image_shape, config.upsample)
    zero = jnp.zeros((), jnp.float32)
    return LabelState(jnp.asarray(target, jnp.int32), trigger, make_optimizer(config).init(trigger),
                      EpochStats(zero, zero, zero, zero), init_schedule(config, image_shape))


# L1 = sum |mask| over (H, W); L2 = sqrt(sum mask^2): the reference's norms over channels, divided by C.
REGULARIZERS = {
    "l1": lambda mask: jnp.sum(jnp.abs(mask)),
    "l2": lambda mask: jnp.sqrt(jnp.sum(jnp.square(mask))),
}


def regularizer(mask: jax.Array, kind: Regularization) -> jax.Array:
    """The mask-size term of the objective."""
    check_choice(kind, typing.get_args(Regularization), "regularization")
    return REGULARIZERS[kind](mask)


def label_step(state: LabelState, raw_batch: jax.Array, model_params: Any, apply: Apply,
               config: ScanConfig, image_shape: tuple[int, int, int]) -> LabelState:
    """One Adam step of one label's trigger on a batch of raw clean images (B, H, W, C)."""

    def objective(trigger: Trigger):
        mask = trigger_mask(trigger, image_shape, config.upsample)
        adv = stamp(raw_batch, mask, trigger_pattern(trigger))
        logits = apply(model_params, config.preprocessing.to_model(adv))
        ce = attack_loss(logits, state.target, config.loss)  # (B,)
        reg = regularizer(mask, config.regularization)
        per_sample = ce + state.schedule.cost * reg
        # Keras differentiates the per-sample loss vector, i.e. its sum over the batch.
        stats = EpochStats(ce.mean(), reg, per_sample.mean(), attack_success(logits, state.target).mean())
        return per_sample.sum(), stats

    grads, stats = jax.grad(objective, has_aux=True)(state.trigger)
    updates, opt = make_optimizer(config).update(grads, state.opt)
    trigger = optax.apply_updates(state.trigger, updates)
    sums = jax.tree_util.tree_map(jnp.add, state.sums, stats)
    new = state._replace(trigger=trigger, opt=opt, sums=sums)
    # A finished label is frozen: its slot may still be computed until the active set is compacted.
    return jax.tree_util.tree_map(lambda old, upd: jnp.where(state.schedule.done, old, upd), state, new)


def label_end_epoch(state: LabelState, config: ScanConfig, image_shape: tuple[int, int, int]) -> LabelState:
    """Close one label's epoch: means of the step statistics, then the schedule; sums restart at 0."""
    n = config.steps_per_epoch
    stats = jax.tree_util.tree_map(lambda s: s / n, state.sums)
    mask = trigger_mask(state.trigger, image_shape, config.upsample)
    schedule = end_epoch(state.schedule, stats, mask, trigger_pattern(state.trigger), config)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, state.sums)
    return state._replace(sums=zeros, schedule=schedule)


def draw_batch(data_key: jax.Array, step: jax.Array, num_images: int, batch_size: int) -> jax.Array:
    """Indices of step `step`'s batch: passes over a fresh seeded permutation of the images, whole batches
    only. Every label of a scan sees the same batch at the same step (the reference draws per label)."""
    per_pass = max(num_images // batch_size, 1)
    order = jax.random.permutation(jax.random.fold_in(data_key, step // per_pass), num_images)
    return jax.lax.dynamic_slice(order, ((step % per_pass) * batch_size,), (batch_size,))
