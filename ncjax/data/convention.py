"""`--preprocess auto`: with labelled raw pixels, try the usual input conventions and keep the one the model
classifies best.

The conventions tried are the ones third-party models use: raw 0..255, x / 255, [-1, 1], and for colour images
torchvision's ImageNet mean/std and caffe's BGR mean subtraction, each in RGB and BGR order (caffe's is BGR only).
A convention is clearly right when the model classifies at least half the images and well above chance that way;
when none is, the choice refuses rather than scan a model that cannot read its images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ncjax.data.accuracy import MAX_IMAGES, batched_logits
from ncjax.data.images import CleanImages
from ncjax.data.preprocess import Preprocessing, PreprocessingMode
from ncjax.errors import DataError, PreflightError

AUTO = "auto"  # the --preprocess value (and manifest preprocess) that asks for the choice
USEFUL_ACCURACY, OVER_CHANCE = 0.5, 0.2  # a clearly right convention reaches both
CLOSE = 0.02  # a runner-up this close in accuracy is named as a close call


@dataclass(frozen=True)
class ConventionTrial:
    """One convention and the share of the labelled images the model classifies correctly through it."""

    preprocessing: Preprocessing
    accuracy: float


@dataclass(frozen=True)
class ConventionChoice:
    """Every convention tried, best first, on `images` labelled images of a `chance` = 1 / classes problem."""

    trials: tuple[ConventionTrial, ...]
    images: int
    chance: float

    @property
    def best(self) -> ConventionTrial:
        return self.trials[0]

    @property
    def runner_up(self) -> ConventionTrial | None:
        return self.trials[1] if len(self.trials) > 1 else None

    @property
    def close_call(self) -> bool:
        """The runner-up classifies nearly as well: the images alone barely tell the two apart."""
        return self.runner_up is not None and self.best.accuracy - self.runner_up.accuracy < CLOSE

    def problem(self) -> str | None:
        """Why no convention is clearly right, or None."""
        if self.best.accuracy >= max(USEFUL_ACCURACY, self.chance + OVER_CHANCE):
            return None
        tried = ", ".join(f"{t.preprocessing.describe()} {t.accuracy:.0%}" for t in self.trials[:3])
        return (f"no input convention makes the model classify the {self.images} labelled clean images well (best: "
                f"{tried}; chance {self.chance:.0%}): check that the labels number the classes as the model does, or "
                "give the model's own statistics with --mean/--std or --preprocess OFFSET,SCALE")

    def line(self) -> str:
        """The choice in one line, with the runner-up."""
        text = f"chose {self.best.preprocessing.describe()} ({self.best.accuracy:.1%} correct"
        runner = self.runner_up
        if runner is None:
            return text + ")"
        text += f"; runner-up {runner.preprocessing.describe()} {runner.accuracy:.1%})"
        if self.close_call:
            text += ": a close call; if you know the model's convention, give it instead of auto"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "chance": self.chance, "chosen": self.best.preprocessing.describe(),
                "accuracy": {t.preprocessing.describe(): t.accuracy for t in self.trials}}


def candidate_conventions(channels: int) -> tuple[Preprocessing, ...]:
    """The conventions `auto` tries for images with `channels` channels."""
    modes: list[PreprocessingMode] = ["raw", "mnist", "inception"]
    if channels != 3:
        return tuple(Preprocessing(mode=mode) for mode in modes)
    both_orders = [Preprocessing(mode=mode, channel_order=order) for mode in [*modes, "torch"]
                   for order in ("rgb", "bgr")]
    return (*both_orders, Preprocessing(mode="imagenet"))


def choose_convention(model: Any, pixels: np.ndarray, labels: np.ndarray | None, *,
                      batch_size: int | None = None) -> ConventionChoice:
    """Try every candidate convention on (up to MAX_IMAGES of) the raw 0..255 `pixels` with their `labels`."""
    if labels is None or len(labels) != len(pixels) or not len(pixels):
        raise DataError("--preprocess auto compares conventions by the model's accuracy, so it needs labelled clean "
                        "images (class sub-folders, or an npz with y); give the model's convention with --preprocess "
                        "instead.")
    count = min(len(pixels), MAX_IMAGES)
    raw = jnp.asarray(pixels[:count], jnp.float32)
    y = np.asarray(labels[:count])
    predict = batched_logits(model, batch_size=batch_size)
    trials = [ConventionTrial(p, float(np.mean(predict(p.to_model(raw)).argmax(-1) == y)))
              for p in candidate_conventions(raw.shape[-1])]
    trials.sort(key=lambda t: -t.accuracy)  # stable: among equals the simpler convention, listed first, wins
    return ConventionChoice(tuple(trials), count, 1.0 / int(model.num_classes))


def auto_convention(model: Any, clean: CleanImages, *, force: bool = False) -> ConventionChoice:
    """`--preprocess auto` for `clean`: the best convention, refused (PreflightError) when none is clearly right
    unless `force`; raw pixels with labels only."""
    if not clean.pixels:
        raise DataError("--preprocess auto reads raw 0..255 pixels (image files, uint8 arrays), but these images are "
                        "float arrays, which are taken as the model's inputs as they are; give uint8 pixels, or leave "
                        "out --preprocess.")
    choice = choose_convention(model, clean.images, clean.labels)
    problem = choice.problem()
    if problem and not force:
        raise PreflightError(f"--preprocess auto: {problem}. (--force scans with the best of them anyway.)")
    return choice
