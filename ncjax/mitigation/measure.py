"""How well a model resists triggers: clean accuracy and each trigger's attack success, on held-apart images."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.data.preprocess import Preprocessing
from ncjax.models.classifier import Classifier, Params
from ncjax.pipeline.triggers import TriggerSet


@dataclass(frozen=True)
class Split:
    """Indices of the images a defense learns from and of those held apart to measure it."""

    train: np.ndarray
    holdout: np.ndarray


def split_images(labels: np.ndarray, holdout_share: float, seed: int) -> Split:
    """Per class, round(share x count) images held apart (at least one where a class has two or more)."""
    rng = np.random.default_rng(seed)
    train, holdout = [], []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(holdout_share * len(index)))
        if len(index) >= 2:
            count = min(max(count, 1), len(index) - 1)
        holdout.append(index[:count])
        train.append(index[count:])
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(holdout)))


@dataclass(frozen=True)
class Measurement:
    """Clean accuracy, and for each trigger the share of images of other labels it sends to its label."""

    clean_accuracy: float
    attack_success: dict[int, float]  # reversed trigger's label -> attack success
    true_attack_success: dict[int, float] | None  # each known trigger's (by its label), when given
    images: int

    def as_dict(self) -> dict:
        true = self.true_attack_success
        return {"clean_accuracy": self.clean_accuracy,
                "attack_success": {str(k): v for k, v in self.attack_success.items()},
                "true_attack_success": None if true is None else {str(k): v for k, v in true.items()},
                "images": self.images}


class Predictor:
    """Batched, jitted predicted labels for a model's params."""

    def __init__(self, model: Classifier, *, batch_size: int = 256):
        self.batch_size = batch_size
        self._predict = jax.jit(lambda p, x: jnp.argmax(model.apply(p, x), axis=-1))

    def __call__(self, params: Params, images: np.ndarray) -> np.ndarray:
        parts = [np.asarray(self._predict(params, jnp.asarray(images[i:i + self.batch_size], jnp.float32)))
                 for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def attack_success(predict: Predictor, params: Params, images: np.ndarray, labels: np.ndarray,
                   triggers: TriggerSet, which: int, preprocessing: Preprocessing) -> float:
    """The share of images not of the trigger's label that the stamped image sends to it."""
    target = int(triggers.labels[which])
    others = images[labels != target]
    if len(others) == 0:
        return float("nan")
    stamped = triggers.stamp(others, which, preprocessing)
    return float(np.mean(predict(params, stamped) == target))


def measure(predict: Predictor, params: Params, images: np.ndarray, labels: np.ndarray, triggers: TriggerSet, *,
            preprocessing: Preprocessing, true_trigger: TriggerSet | None = None) -> Measurement:
    accuracy = float(np.mean(predict(params, images) == labels)) if len(images) else float("nan")
    def each(chosen: TriggerSet) -> dict[int, float]:
        return {int(label): attack_success(predict, params, images, labels, chosen, k, preprocessing)
                for k, label in enumerate(chosen.labels)}

    return Measurement(accuracy, each(triggers), None if true_trigger is None else each(true_trigger), len(images))
