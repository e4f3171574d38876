"""Which hidden neurons a trigger excites: the paper ranks them by how much more they fire on stamped images
than on the same images clean (Section VI.A/B); per trigger, or the largest such difference over triggers."""
from __future__ import annotations

import numpy as np

from ncjax.data.preprocess import Preprocessing
from ncjax.mitigation.weights import UnitReader
from ncjax.models.classifier import Params
from ncjax.pipeline.triggers import TriggerSet


def trigger_excitations(read: UnitReader, params: Params, images: np.ndarray, labels: np.ndarray,
                        triggers: TriggerSet, preprocessing: Preprocessing) -> np.ndarray:
    """(triggers, units): per trigger and unit, mean activation stamped minus clean, on the images not of the
    trigger's label."""
    differences = []
    for k, target in enumerate(triggers.labels):
        others = images[labels != target]
        clean = read(params, others).mean(axis=0)
        stamped = read(params, triggers.stamp(others, k, preprocessing)).mean(axis=0)
        differences.append(stamped - clean)
    return np.stack(differences)


def trigger_excitation(read: UnitReader, params: Params, images: np.ndarray, labels: np.ndarray,
                       triggers: TriggerSet, preprocessing: Preprocessing) -> np.ndarray:
    """(units,): per unit, the largest excitation over the triggers."""
    return trigger_excitations(read, params, images, labels, triggers, preprocessing).max(axis=0)


def most_excited(excitation: np.ndarray) -> np.ndarray:
    """Unit indices, most trigger-excited first (ties in index order, so the order is reproducible)."""
    return np.argsort(-excitation, kind="stable")
