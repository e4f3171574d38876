"""ncjax.mitigate: repair a classifier with the triggers a scan reversed, and measure the repair on images the
defense never saw."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ncjax.data.preprocess import Preprocessing
from ncjax.errors import MitigationError
from ncjax.mitigation.config import Method, MitigationConfig
from ncjax.mitigation.input_filter import FilterRates, InputFilter, fit_filter
from ncjax.mitigation.measure import Measurement, Predictor, measure, split_images
from ncjax.mitigation.progress import ProgressCallback
from ncjax.mitigation.prune import PruneCurve, prune
from ncjax.mitigation.unlearn import UnlearnLog, unlearn
from ncjax.mitigation.weights import hidden_layer
from ncjax.models.classifier import Classifier
from ncjax.pipeline.triggers import TriggerSet


@dataclass(frozen=True)
class MitigationResult:
    """The repaired model (the filter leaves it as it was), measured before and after on held-apart images.

    For the filter, `after` measures the model behind its filter: a flagged image counts as refused, so clean
    accuracy is the share classified right and let through, attack success the share sent to the label and let
    through.
    """

    method: Method
    labels: tuple[int, ...]  # the triggers' labels
    model: Classifier
    before: Measurement
    after: Measurement
    train_images: int
    holdout_images: int
    seconds: float
    unlearn: UnlearnLog | None = None
    prune: PruneCurve | None = None
    input_filter: InputFilter | None = None
    filter_rates: FilterRates | None = None

    def as_dict(self) -> dict:
        details = {"unlearn": self.unlearn, "prune": self.prune, "filter": self.filter_rates}
        return {"method": self.method, "labels": list(self.labels), "before": self.before.as_dict(),
                "after": self.after.as_dict(), "train_images": self.train_images,
                "holdout_images": self.holdout_images, "seconds": self.seconds,
                **{k: v.as_dict() for k, v in details.items() if v is not None}}


def mitigate(model: Classifier, images: np.ndarray, labels: np.ndarray | None, triggers: TriggerSet, *,
             key: jax.Array, config: MitigationConfig = MitigationConfig(),
             preprocessing: Preprocessing = Preprocessing(),
             layer: str | None = None, true_trigger: TriggerSet | None = None,
             callback: ProgressCallback | None = None) -> MitigationResult:
    """Repair `model` against `triggers` with config.method; measure on a held-apart share of the images.

    Args:
      model: the classifier (ncjax.load_model).
      images: clean images (N, H, W, C) in the model's input scale; labels: their true labels (N,).
      triggers: the reversed triggers to remove (a scan's triggers.npz, TriggerSet.select for some labels).
      key: the PRNG key of the split, the stamping and the batch order.
      layer: the hidden layer for prune and filter (default: the last hidden layer with weights).
      true_trigger: known triggers (one per label) whose attack success is reported too.
      callback: called with a MitigationProgress after each fine-tuning or pruning step.
    """
    images, labels = _checked(model, images, labels, triggers, true_trigger)
    if layer is not None and config.method == "unlearn":
        raise MitigationError("a layer is chosen for pruning or the filter; unlearning fine-tunes every layer.")
    # Resolved before any work so that a wrong layer name fails at once.
    hidden = hidden_layer(model, layer) if config.method in ("prune", "filter") else None
    start = time.perf_counter()
    seed = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
    split = split_images(labels, config.holdout_share, seed)
    train = (images[split.train], labels[split.train])
    holdout = (images[split.holdout], labels[split.holdout])
    predict = Predictor(model)
    settings: dict[str, Any] = dict(preprocessing=preprocessing, true_trigger=true_trigger)
    before = measure(predict, model.params, *holdout, triggers, **settings)
    common: dict[str, Any] = dict(method=config.method, labels=tuple(int(v) for v in triggers.labels), before=before,
                                  train_images=len(split.train), holdout_images=len(split.holdout))
    if config.method == "unlearn":
        params, log = unlearn(model, *train, triggers, config=config, preprocessing=preprocessing, seed=seed,
                              callback=callback)
        after = measure(predict, params, *holdout, triggers, **settings)
        return MitigationResult(model=dataclasses.replace(model, params=params), after=after, unlearn=log,
                                seconds=time.perf_counter() - start, **common)
    assert hidden is not None  # resolved above for prune and filter
    if config.method == "prune":
        params, curve = prune(model, hidden, train, holdout, triggers, config=config, predict=predict,
                              callback=callback, **settings)
        return MitigationResult(model=dataclasses.replace(model, params=params), after=curve.steps[curve.chosen],
                                prune=curve, seconds=time.perf_counter() - start, **common)
    if config.method == "filter":
        input_filter, rates, after = fit_filter(model, hidden, train, holdout, triggers, config=config,
                                                predict=predict, **settings)
        return MitigationResult(model=model, after=after, input_filter=input_filter, filter_rates=rates,
                                seconds=time.perf_counter() - start, **common)
    raise MitigationError(f"unknown mitigation method {config.method!r}.")  # MitigationConfig refuses it first


def _checked(model: Classifier, images, labels, triggers: TriggerSet, true_trigger: TriggerSet | None):
    """The images and labels as arrays that fit the model and the triggers, or a MitigationError saying why."""
    images = np.asarray(images, np.float32)
    if labels is None:
        raise MitigationError("mitigation needs the true label of every clean image (unlearning keeps them; "
                              "accuracy is measured with them); the data carries none.")
    labels = np.asarray(labels).reshape(-1)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(model.input_shape):
        raise MitigationError(f"images must be (N, {', '.join(map(str, model.input_shape))}) for this model; got "
                              f"{images.shape}.")
    if len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0 \
            or labels.max(initial=0) >= model.num_classes:
        raise MitigationError(f"labels must be {len(images)} whole numbers in [0, {model.num_classes}); got "
                              f"{labels.shape} of {labels.dtype}.")
    if len(np.unique(labels)) < 2 or len(images) < 4:
        raise MitigationError("mitigation needs images of at least two classes, some to learn from and some to "
                              "measure with.")
    for name, chosen in (("triggers", triggers), ("true trigger", true_trigger)):
        if chosen is None:
            continue
        if len(chosen) == 0:
            raise MitigationError(f"the {name} hold no trigger; pass the labels to remove.")
        if tuple(chosen.patterns.shape[1:]) != tuple(model.input_shape):
            raise MitigationError(f"the {name} are for images {chosen.patterns.shape[1:]}, the model takes "
                                  f"{tuple(model.input_shape)}: they come from a scan of another model.")
        bad = [int(v) for v in chosen.labels if not 0 <= v < model.num_classes]
        if bad:
            raise MitigationError(f"the {name} send images to label(s) {bad}, which the model does not have.")
    if true_trigger is not None and len(set(true_trigger.labels.tolist())) != len(true_trigger):
        raise MitigationError("give at most one true trigger per label.")
    return images, labels


def triggers_for(triggers: TriggerSet, labels: Sequence[int] | None) -> TriggerSet:
    """The triggers to remove: `labels` if given, else those the scan's verdict named."""
    chosen = list(labels) if labels else list(triggers.named)
    if not chosen:
        raise MitigationError("the scan named no label (its verdict was clean or inconclusive); choose the triggers "
                              "to remove with labels=[...] (--labels on the command line).")
    return triggers.select(chosen)
