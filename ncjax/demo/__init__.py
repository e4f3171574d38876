"""The embedded demo: a synthetic-traffic-sign classifier backdoored at label 33, its clean twin, and clean
images to scan, all made by ncjax itself (experiments/make_demo_models.py; `make demo-models`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ncjax.lab import synth
from ncjax.models.classifier import Classifier
from ncjax.models.loading import load_model

HERE = Path(__file__).parent
INFECTED_FILE = "gtsrb_synth_backdoor_33.h5"
CLEAN_FILE = "gtsrb_synth_clean.h5"
TARGET = 33
TRAIN_SEED, HELDOUT_SEED, SCAN_SEED = 1, 2, 3


def demo_model_path(*, infected: bool = True) -> Path:
    return HERE / (INFECTED_FILE if infected else CLEAN_FILE)


def demo_model(*, infected: bool = True) -> Classifier:
    """The demo classifier: backdoored at 33 by default, or its clean twin."""
    return load_model(demo_model_path(infected=infected))


def demo_images(n: int = 2000, *, seed: int = SCAN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Clean synthetic images (n, 32, 32, 3) float32 raw 0..255 and their labels, never seen in training."""
    images, labels = synth.generate(n, seed=seed)
    return images.astype(np.float32), labels
