"""Pre-flight: before a scan, does the model see the clean images the way it was trained to?

A wrong intensity range or channel order is the most common way to get a meaningless Neural Cleanse result
(the reference's issue tracker opens with an MNIST model whose anomaly index a mismatched range inverted). With
labelled images, the model's accuracy on them is measured as given and under the other plausible readings
(divided by 255, times 255, channels reversed; for image files, every preprocessing mode); a reading that is
clearly better, an accuracy near chance, or a model whose output does not depend on its input, stops the
command line with what to check (`--force` scans anyway). The figures go into report.json.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.data.accuracy import MAX_IMAGES, batched_logits
from ncjax.data.preprocess import ChannelOrder, Preprocessing, PreprocessingMode

# Another reading is clearly better when it is useful, halves the errors and gains this much accuracy.
USEFUL_ACCURACY, ERROR_RATIO, MARGIN = 0.5, 0.5, 0.2
# Near chance: less than this share of the way from chance to every image right. A model reading its images as
# trained gets far more; one that does not (wrong scale, wrong order, labels numbered otherwise) gets about chance.
NEAR_CHANCE = 0.1


@dataclass(frozen=True)
class Reading:
    """One way of handing the images to the model, and how well it classifies them that way."""

    name: str  # e.g. "as given", "divided by 255"
    advice: str  # what to do to read them this way
    accuracy: float


@dataclass(frozen=True)
class Preflight:
    images: int  # how many images were checked
    constant_output: bool  # every image gave the same logits: the output ignores the input
    chance: float  # 1 / classes
    given: Reading | None  # None without labels
    others: tuple[Reading, ...]

    def problem(self) -> str | None:
        """Why the scan should not run as set, or None."""
        if self.constant_output:
            return (f"the model gives the same output for all {self.images} clean images checked: it does not depend "
                    "on its input (all-zero or broken weights?), so no trigger can be measured")
        if self.given is None:
            return None
        given = self.given.accuracy
        best = max(self.others, key=lambda r: r.accuracy, default=None)
        # Clearly better means useful and well above chance (with two classes, 58 % is no reading's merit).
        useful = max(USEFUL_ACCURACY, self.chance + USEFUL_ACCURACY * (1 - self.chance))
        if (best is not None and best.accuracy >= max(useful, given + MARGIN)
                and 1 - best.accuracy <= ERROR_RATIO * (1 - given)):
            return (f"the model classifies the clean images far better {best.name} ({best.accuracy:.0%}) than as "
                    f"set ({given:.0%}, chance {self.chance:.0%}): {best.advice}")
        if given < self.chance + NEAR_CHANCE * (1 - self.chance):
            return (f"the model classifies only {given:.1%} of the {self.images} labelled clean images correctly, "
                    f"about chance ({self.chance:.1%}), so it does not see them as it was trained to: check the "
                    "input convention (--preprocess; --preprocess auto tries the usual ones on labelled pixels), the "
                    "channel order (--bgr), and that the labels number the classes as the model does")
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "constant_output": self.constant_output, "chance": self.chance,
                "accuracy": None if self.given is None else self.given.accuracy,
                "other_readings": {r.name: r.accuracy for r in self.others}}


def run_preflight(model: Any, images: np.ndarray, labels: np.ndarray | None, *, preprocessing: Preprocessing,
                  from_pixels: bool, batch_size: int | None = None) -> Preflight:
    """Check `images` (in the model's input scale, as the scan takes them) against `model`."""
    count = min(len(images), MAX_IMAGES)
    x = jnp.asarray(images[:count], jnp.float32)
    predict = batched_logits(model, batch_size=batch_size)
    logits = predict(x)
    # Random images over the same range too: identical clean images alone would prove nothing.
    low, high = float(jnp.min(x)), float(jnp.max(x))
    probes = jax.random.uniform(jax.random.key(0), (8, *x.shape[1:]), minval=low, maxval=max(high, low + 1))
    both = np.concatenate([logits, predict(probes)])
    constant = bool(np.all(np.abs(both - both[:1]) <= 1e-6 * (np.abs(both).max() + 1e-12)))
    chance = 1.0 / int(model.num_classes)
    if labels is None or constant:
        return Preflight(count, constant, chance, None, ())
    y = np.asarray(labels[:count])
    accuracy = lambda out: float(np.mean(out.argmax(-1) == y))
    others = tuple(Reading(name, advice, accuracy(predict(transform(x))))
                   for name, advice, transform in _readings(x, preprocessing, from_pixels))
    return Preflight(count, constant, chance, Reading("as set", "", accuracy(logits)), others)


def _readings(x: jax.Array, preprocessing: Preprocessing, from_pixels: bool):
    """(name, advice, transform of the model-scale images) for each other plausible reading."""
    channels = x.shape[-1]
    if from_pixels:  # raw pixels went through `preprocessing`: try the other modes on the same pixels
        raw = preprocessing.to_raw(x)
        colour: list[PreprocessingMode] = ["imagenet", "torch"] if channels == 3 else []
        modes: list[PreprocessingMode] = ["raw", "mnist", "inception", *colour]
        for mode in modes:
            if mode != preprocessing.mode:
                other = Preprocessing(mode=mode)
                yield f"with --preprocess {mode}", f"pass --preprocess {mode}", lambda _, p=other: p.to_model(raw)
        if channels == 3 and preprocessing.mode != "imagenet":
            order: ChannelOrder = "rgb" if preprocessing.channel_order == "bgr" else "bgr"
            flipped = dataclasses.replace(preprocessing, channel_order=order)
            yield (f"with the channels in {order.upper()} order", f"pass {flipped.describe()}",
                   lambda _: flipped.to_model(raw))
        return
    advice = "save the images in the model's input scale (arrays are taken as the model's inputs)"
    yield "divided by 255", advice + ", or give image files with --preprocess mnist", lambda v: v / 255
    yield "multiplied by 255", advice, lambda v: v * 255
    if channels == 3:
        yield "with the channels reversed (BGR)", advice + " in the model's channel order", lambda v: v[..., ::-1]
