"""Pruning (the paper's Section VI.B): set to zero the weights of the hidden neurons the reversed triggers
excite most, in steps, measuring clean accuracy and attack success after each; stop once every trigger fails
or before clean accuracy drops too far."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ncjax.data.preprocess import Preprocessing
from ncjax.errors import MitigationError
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.measure import Measurement, Predictor, measure
from ncjax.mitigation.progress import MitigationProgress, ProgressCallback
from ncjax.mitigation.ranking import most_excited, trigger_excitation
from ncjax.mitigation.weights import HiddenLayer, UnitReader, prune_units
from ncjax.models.classifier import Classifier, Params
from ncjax.pipeline.triggers import TriggerSet

Stop = str  # "target reached", "accuracy limit", "layer exhausted"


@dataclass(frozen=True)
class PruneCurve:
    """One measurement per step (step 0: nothing pruned), the neurons in pruning order, the step kept."""

    layer: str
    units: int
    order: tuple[int, ...]  # unit indices, most trigger-excited first
    pruned: tuple[int, ...]  # neurons pruned at each step
    steps: tuple[Measurement, ...]
    chosen: int  # the step whose params are returned
    stop: Stop
    seconds: float

    def as_dict(self) -> dict:
        return {"layer": self.layer, "units": self.units, "order": list(self.order), "chosen_step": self.chosen,
                "stop": self.stop, "seconds": self.seconds,
                "steps": [{"pruned": n, "pruned_share": n / self.units, **m.as_dict()}
                          for n, m in zip(self.pruned, self.steps)]}


def _worst(m: Measurement) -> float:
    values = [v for v in m.attack_success.values() if not math.isnan(v)]
    return max(values, default=0.0)


def prune(model: Classifier, layer: HiddenLayer, train: tuple[np.ndarray, np.ndarray],
          holdout: tuple[np.ndarray, np.ndarray], triggers: TriggerSet, *, config: MitigationConfig,
          preprocessing: Preprocessing, predict: Predictor, true_trigger: TriggerSet | None = None,
          callback: ProgressCallback | None = None) -> tuple[Params, PruneCurve]:
    """Rank on the training images, measure on the held-apart ones; returns the kept step's params."""
    start = time.perf_counter()
    read = UnitReader(model, layer)
    _check_silenced(read, model, layer, holdout[0])  # before any work: a layer that cannot be pruned is refused
    order = most_excited(trigger_excitation(read, model.params, *train, triggers, preprocessing))
    per_step = max(1, math.ceil(config.prune_step * layer.units))

    def measured(params):
        return measure(predict, params, *holdout, triggers, preprocessing=preprocessing, true_trigger=true_trigger)

    steps, pruned, chosen, stop = [measured(model.params)], [0], model.params, "layer exhausted"
    for count in range(per_step, layer.units + per_step, per_step):
        count = min(count, layer.units)
        params = prune_units(model.params, layer, order[:count])
        steps.append(measured(params))
        pruned.append(count)
        if callback is not None:
            callback(MitigationProgress("pruning steps", len(pruned) - 1, -(-layer.units // per_step)))
        if steps[0].clean_accuracy - steps[-1].clean_accuracy > config.max_accuracy_drop:
            stop = "accuracy limit"
            break
        chosen = params
        if _worst(steps[-1]) <= config.target_attack_success:
            stop = "target reached"
            break
    kept = len(steps) - (2 if stop == "accuracy limit" else 1)
    curve = PruneCurve(layer.name, layer.units, tuple(int(v) for v in order), tuple(pruned), tuple(steps), kept,
                       stop, time.perf_counter() - start)
    return chosen, curve


def _check_silenced(read: UnitReader, model: Classifier, layer: HiddenLayer, images: np.ndarray) -> None:
    """Zeroing a unit's weights must silence it: not so where its activation maps 0 elsewhere (sigmoid)."""
    sample = images[:16]
    params = prune_units(model.params, layer, np.arange(layer.units))
    if len(sample) and float(np.abs(read(params, sample)).max()) > 1e-6:
        raise MitigationError(f"zeroing the weights of layer {layer.name!r} does not silence its neurons (what "
                              "follows the weights maps zero to a non-zero value); choose another --layer.")
