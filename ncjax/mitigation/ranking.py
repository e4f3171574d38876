"""Which hidden neurons a trigger excites: the paper ranks them by how much more they fire on stamped images
than on the same images clean (Section VI.A/B), here the largest such difference over the triggers."""
from __future__ import annotations

import numpy as np

from ncjax.classifier import Params
from ncjax.mitigation.triggers import TriggerSet
from ncjax.mitigation.weights import UnitReader
from ncjax.preprocess import Preprocessing


def trigger_excitation(read: UnitReader, params: Params, images: np.ndarray, labels: np.ndarray,
                       triggers: TriggerSet, preprocessing: Preprocessing) -> np.ndarray:
    """(units,): per unit, the largest over triggers of mean activation stamped minus clean, on the images not
    of the trigger's label."""
    differences = []
    for k, target in enumerate(triggers.labels):
        others = images[labels != target]
        clean = read(params, others).mean(axis=0)
        stamped = read(params, triggers.stamp(others, k, preprocessing)).mean(axis=0)
        differences.append(stamped - clean)
    return np.max(differences, axis=0)


def most_excited(excitation: np.ndarray) -> np.ndarray:
    """Unit indices, most trigger-excited first (ties in index order, so the order is reproducible)."""
    return np.argsort(-excitation, kind="stable")
