"""Unlearning (the paper's Section VI.C): fine-tune the classifier's own weights on clean images of which a share
carry a reversed trigger while keeping their true labels, so the trigger stops meaning its label.

The classifier runs as it does in inference: dropout off, BatchNormalization on its stored statistics, which stay
frozen (only trained weights move).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ncjax.data.preprocess import Preprocessing
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.progress import MitigationProgress, ProgressCallback
from ncjax.mitigation.weights import trainable_mask
from ncjax.models.classifier import Classifier, Params
from ncjax.pipeline.triggers import TriggerSet


@dataclass(frozen=True)
class UnlearnLog:
    """What the fine-tuning did: the mean loss of each epoch, images seen and stamped per epoch, time."""

    epoch_losses: tuple[float, ...]
    images: int
    stamped: int
    steps: int
    seconds: float

    def as_dict(self) -> dict:
        return {"epoch_losses": list(self.epoch_losses), "images": self.images, "stamped_per_epoch": self.stamped,
                "steps": self.steps, "seconds": self.seconds}


def _optimizer(model: Classifier, learning_rate: float, steps: int) -> optax.GradientTransformation:
    """Adam on the trained weights, its rate decaying to 0 along a cosine over the steps; statistics frozen."""
    mask = trainable_mask(model)
    labels = jax.tree_util.tree_map(lambda trainable: "train" if trainable else "frozen", mask)
    schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1))
    return optax.multi_transform({"train": optax.adam(schedule), "frozen": optax.set_to_zero()}, labels)


def stamped_epoch(images: np.ndarray, triggers: TriggerSet, share: float, preprocessing: Preprocessing,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """The images in a new order, `share` of them (rounded) stamped, each with one trigger picked at random."""
    order = rng.permutation(len(images))
    epoch = images[order].copy()
    chosen = rng.choice(len(images), size=int(round(share * len(images))), replace=False)
    which = rng.integers(0, len(triggers), size=len(chosen))
    for k in range(len(triggers)):
        picked = chosen[which == k]
        if len(picked):
            epoch[picked] = triggers.stamp(epoch[picked], k, preprocessing)
    return epoch, order, len(chosen)


def unlearn(model: Classifier, images: np.ndarray, labels: np.ndarray, triggers: TriggerSet, *,
            config: MitigationConfig, preprocessing: Preprocessing, seed: int,
            callback: ProgressCallback | None = None) -> tuple[Params, UnlearnLog]:
    """Fine-tuned params and what the fine-tuning did; `images` are the training share, model input scale."""
    start = time.perf_counter()
    per_epoch = -(-len(images) // config.batch_size)
    epochs = max(config.epochs, -(-config.min_steps // per_epoch))
    optimizer = _optimizer(model, config.learning_rate, epochs * per_epoch)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params, rng = model.params, np.random.default_rng(seed)
    opt_state = optimizer.init(params)
    losses, steps, stamped = [], 0, 0
    for _ in range(epochs):
        epoch, order, stamped = stamped_epoch(images, triggers, config.stamped_share, preprocessing, rng)
        epoch_labels, total = labels[order], 0.0
        for i in range(0, len(epoch), config.batch_size):
            params, opt_state, loss = step(params, opt_state, jnp.asarray(epoch[i:i + config.batch_size]),
                                           jnp.asarray(epoch_labels[i:i + config.batch_size]))
            total += float(loss) * len(epoch[i:i + config.batch_size])
            steps += 1
            if callback is not None:
                callback(MitigationProgress("fine-tuning steps", steps, epochs * per_epoch))
        losses.append(total / max(len(epoch), 1))
    return params, UnlearnLog(tuple(losses), len(images), stamped, steps, time.perf_counter() - start)
