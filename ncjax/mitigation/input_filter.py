"""The input filter (the paper's Section VI.A): an image's score is the mean activation of the hidden neurons
a reversed trigger excites most (one group per trigger); images scoring above a threshold set on clean images
are flagged."""
from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ncjax.data.preprocess import Preprocessing
from ncjax.errors import MitigationError
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.measure import Measurement, Predictor
from ncjax.mitigation.ranking import most_excited, trigger_excitations
from ncjax.mitigation.weights import HiddenLayer, UnitReader, hidden_layer
from ncjax.models.classifier import Classifier, Params
from ncjax.models.safe_files import open_npz, write_npz_atomic
from ncjax.pipeline.triggers import TriggerSet

FILTER_FORMAT = "ncjax-filter-2"


class InputFilter:
    """`score(x)`: per image (model input scale), the largest over triggers of how far the mean activation of that
    trigger's neurons lies above its level on clean images, in clean standard deviations (with one trigger, the
    paper's score, standardized); `flags(x)`: score above the threshold.

    One group of neurons per trigger: a filter for two triggers built from one ranking would keep the neurons of
    the trigger that excites them most and miss the other (measured in experiments/mitigation.md).
    """

    def __init__(self, model: Classifier, layer: HiddenLayer, neuron_groups: Sequence[Sequence[int] | np.ndarray],
                 centers, scales, threshold: float, *, params: Params | None = None):
        groups = tuple(np.asarray(g, np.int64).reshape(-1) for g in neuron_groups)
        centers, scales = np.asarray(centers, np.float64).reshape(-1), np.asarray(scales, np.float64).reshape(-1)
        if not groups or any(g.size == 0 or g.min() < 0 or g.max() >= layer.units for g in groups):
            raise MitigationError(f"filter: every neuron group must hold indices in [0, {layer.units}) of layer "
                                  f"{layer.name!r}.")
        if len(centers) != len(groups) or len(scales) != len(groups) or not (
                np.all(np.isfinite(centers)) and np.all(scales > 0) and np.all(np.isfinite(scales))
                and math.isfinite(threshold)):
            raise MitigationError("filter: one finite clean level and one positive finite spread per neuron group, "
                                  "and a finite threshold, are needed.")
        self.model, self.layer, self.groups = model, layer, groups
        self.centers, self.scales, self.threshold = centers, scales, float(threshold)
        self._params = model.params if params is None else params
        self._read = UnitReader(model, layer)

    def group_means(self, images: np.ndarray) -> np.ndarray:
        """(N, groups): the mean activation of each group's neurons per image."""
        values = self._read(self._params, np.asarray(images, np.float32))
        return np.stack([values[:, g].mean(axis=1) for g in self.groups], axis=1)

    def score(self, images: np.ndarray) -> np.ndarray:
        return ((self.group_means(images) - self.centers) / self.scales).max(axis=1)

    def flags(self, images: np.ndarray) -> np.ndarray:
        return self.score(images) > self.threshold

    def save(self, path: str | os.PathLike) -> None:
        meta = {"format": FILTER_FORMAT, "layer": self.layer.name, "threshold": self.threshold,
                "model": self.model.source}
        write_npz_atomic(path, neurons=np.concatenate(self.groups), sizes=np.asarray([len(g) for g in self.groups]),
                         centers=self.centers, scales=self.scales, meta=np.asarray(json.dumps(meta)))


def load_filter(path: str | os.PathLike, model: Classifier) -> InputFilter:
    """A filter written by InputFilter.save, for `model` (the one it was fitted on)."""
    try:
        with open_npz(os.fspath(path), error=MitigationError, what="filter file", max_bytes=1 << 26) as data:
            arrays = {k: data[k] for k in ("neurons", "sizes", "centers", "scales", "meta")}
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FILTER_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        sizes = arrays["sizes"].astype(np.int64)
        if sizes.size == 0 or sizes.min() < 1 or sizes.sum() != len(arrays["neurons"]):
            raise ValueError("neuron groups that do not add up")
        groups = np.split(arrays["neurons"], np.cumsum(sizes)[:-1])
    except MitigationError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as e:
        raise MitigationError(f"{os.fspath(path)!r} is not an ncjax filter file ({type(e).__name__}: {e}).") from None
    return InputFilter(model, hidden_layer(model, meta["layer"]), groups, arrays["centers"], arrays["scales"],
                       float(meta["threshold"]))


@dataclass(frozen=True)
class FilterRates:
    """On held-apart images: the share of clean ones flagged and of stamped ones caught, per trigger."""

    threshold: float
    neurons: dict[int, tuple[int, ...]]  # reversed trigger's label -> its neurons
    false_positive_rate: float
    caught: dict[int, float]  # reversed trigger's label -> share of stamped images flagged
    true_caught: dict[int, float] | None  # each known trigger's, by its label

    def as_dict(self) -> dict:
        true = self.true_caught
        return {"threshold": self.threshold, "neurons": {str(k): list(v) for k, v in self.neurons.items()},
                "false_positive_rate": self.false_positive_rate,
                "caught": {str(k): v for k, v in self.caught.items()},
                "true_caught": None if true is None else {str(k): v for k, v in true.items()}}


def neuron_count(share: float, units: int) -> int:
    return max(1, int(round(share * units)))


def threshold_at(scores: np.ndarray, false_positive_rate: float) -> float:
    """The score above which `false_positive_rate` of these clean images lie."""
    return float(np.quantile(scores, 1.0 - false_positive_rate))


def fit_filter(model: Classifier, layer: HiddenLayer, train: tuple[np.ndarray, np.ndarray],
               holdout: tuple[np.ndarray, np.ndarray], triggers: TriggerSet, *, config: MitigationConfig,
               predict: Predictor, preprocessing: Preprocessing, true_trigger: TriggerSet | None = None,
               ) -> tuple[InputFilter, FilterRates, Measurement]:
    """Choose the neurons and the threshold on the training images; measure on the held-apart ones the filter's
    rates and the model behind it (a flagged image counts as refused)."""
    read = UnitReader(model, layer)
    excitations = trigger_excitations(read, model.params, *train, triggers, preprocessing)
    count = neuron_count(config.filter_neurons, layer.units)
    groups = [np.sort(most_excited(e)[:count]) for e in excitations]
    clean = read(model.params, train[0])
    means = np.stack([clean[:, g].mean(axis=1) for g in groups], axis=1)
    centers, scales = means.mean(axis=0), np.maximum(means.std(axis=0), 1e-6)
    scores = ((means - centers) / scales).max(axis=1)
    input_filter = InputFilter(model, layer, groups, centers, scales, threshold_at(scores, config.false_positive_rate))
    images, labels = holdout
    clean_flags = input_filter.flags(images)
    passed_correct = float(np.mean((predict(model.params, images) == labels) & ~clean_flags))

    def caught_and_passed(chosen: TriggerSet, which: int) -> tuple[float, float]:
        others = images[labels != chosen.labels[which]]
        if len(others) == 0:
            return float("nan"), float("nan")
        stamped = chosen.stamp(others, which, preprocessing)
        flags = input_filter.flags(stamped)
        hits = predict(model.params, stamped) == chosen.labels[which]
        return float(flags.mean()), float(np.mean(hits & ~flags))

    def each(chosen: TriggerSet) -> dict[int, tuple[float, float]]:
        return {int(t): caught_and_passed(chosen, k) for k, t in enumerate(chosen.labels)}

    per_trigger = each(triggers)
    true = None if true_trigger is None else each(true_trigger)
    neurons = {int(t): tuple(int(v) for v in g) for t, g in zip(triggers.labels, groups)}
    rates = FilterRates(input_filter.threshold, neurons, float(clean_flags.mean()),
                        {t: v[0] for t, v in per_trigger.items()},
                        None if true is None else {t: v[0] for t, v in true.items()})
    after = Measurement(passed_correct, {t: v[1] for t, v in per_trigger.items()},
                        None if true is None else {t: v[1] for t, v in true.items()}, len(images))
    return input_filter, rates, after
