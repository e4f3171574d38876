"""The input filter (the paper's Section VI.A): an image's score is the mean activation of the hidden neurons
the reversed triggers excite most; images scoring above a threshold set on clean images are flagged."""
from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncjax.classifier import Classifier, Params
from ncjax.errors import MitigationError
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.measure import Measurement, Predictor
from ncjax.mitigation.ranking import most_excited, trigger_excitation
from ncjax.mitigation.triggers import TriggerSet
from ncjax.mitigation.weights import HiddenLayer, UnitReader, hidden_layer
from ncjax.preprocess import Preprocessing
from ncjax.safe_files import open_npz

FILTER_FORMAT = "ncjax-filter-1"


class InputFilter:
    """`score(x)`: mean activation of the chosen neurons per image (model input scale); `flags(x)`: score above
    the threshold."""

    def __init__(self, model: Classifier, layer: HiddenLayer, neurons, threshold: float, *,
                 params: Params | None = None):
        neurons = np.asarray(neurons, np.int64).reshape(-1)
        if neurons.size == 0 or neurons.min() < 0 or neurons.max() >= layer.units:
            raise MitigationError(f"filter: neuron indices must lie in [0, {layer.units}) for layer {layer.name!r}.")
        if not math.isfinite(threshold):
            raise MitigationError(f"filter: the threshold must be a finite number, got {threshold!r}.")
        self.model, self.layer, self.neurons, self.threshold = model, layer, neurons, float(threshold)
        self._params = model.params if params is None else params
        self._read = UnitReader(model, layer)

    def score(self, images: np.ndarray) -> np.ndarray:
        return self._read(self._params, np.asarray(images, np.float32))[:, self.neurons].mean(axis=1)

    def flags(self, images: np.ndarray) -> np.ndarray:
        return self.score(images) > self.threshold

    def save(self, path: str | os.PathLike) -> None:
        meta = {"format": FILTER_FORMAT, "layer": self.layer.name, "threshold": self.threshold,
                "model": self.model.source}
        path = Path(path)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(partial, neurons=self.neurons, meta=np.asarray(json.dumps(meta)))
        os.replace(partial, path)


def load_filter(path: str | os.PathLike, model: Classifier) -> InputFilter:
    """A filter written by InputFilter.save, for `model` (the one it was fitted on)."""
    try:
        with open_npz(os.fspath(path), error=MitigationError, what="filter file", max_bytes=1 << 26) as data:
            neurons, meta = data["neurons"], json.loads(str(data["meta"]))
        if meta.get("format") != FILTER_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
    except MitigationError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as e:
        raise MitigationError(f"{os.fspath(path)!r} is not an ncjax filter file ({type(e).__name__}: {e}).") from None
    return InputFilter(model, hidden_layer(model, meta["layer"]), neurons, float(meta["threshold"]))


@dataclass(frozen=True)
class FilterRates:
    """On held-apart images: the share of clean ones flagged and of stamped ones caught, per trigger."""

    threshold: float
    neurons: tuple[int, ...]
    false_positive_rate: float
    caught: dict[int, float]  # reversed trigger's label -> share of stamped images flagged
    true_caught: dict[int, float] | None  # each known trigger's, by its label

    def as_dict(self) -> dict:
        true = self.true_caught
        return {"threshold": self.threshold, "neurons": list(self.neurons),
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
    order = most_excited(trigger_excitation(read, model.params, *train, triggers, preprocessing))
    neurons = np.sort(order[:neuron_count(config.filter_neurons, layer.units)])
    clean_scores = read(model.params, train[0])[:, neurons].mean(axis=1)
    input_filter = InputFilter(model, layer, neurons, threshold_at(clean_scores, config.false_positive_rate))
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
    rates = FilterRates(input_filter.threshold, tuple(int(v) for v in neurons), float(clean_flags.mean()),
                        {t: v[0] for t, v in per_trigger.items()},
                        None if true is None else {t: v[0] for t, v in true.items()})
    after = Measurement(passed_correct, {t: v[1] for t, v in per_trigger.items()},
                        None if true is None else {t: v[1] for t, v in true.items()}, len(images))
    return input_filter, rates, after
