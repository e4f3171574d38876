"""The ROC curve of an audit's score against the truth given, and its figure (drawn with Pillow, as the scan's
summary.png is: the library does not depend on a plotting package)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ncjax.models.safe_files import save_png_atomic

BLACK, GREY, BLUE, RED = (20, 20, 20), (170, 170, 170), (40, 90, 200), (220, 30, 30)
SIZE, LEFT, TOP = 340, 60, 50  # the plot's side and its offsets in the picture, in pixels


@dataclass(frozen=True)
class RocCurve:
    """Calling a model infected when its score is at least `thresholds[i]` gives false-positive rate
    `false_positive_rates[i]` and true-positive rate `true_positive_rates[i]`; from (0, 0) to (1, 1)."""

    false_positive_rates: tuple[float, ...]
    true_positive_rates: tuple[float, ...]
    thresholds: tuple[float, ...]
    auc: float  # the area under the curve (ties between an infected and a clean score count half)


def roc_curve(positives: Sequence[float], negatives: Sequence[float]) -> RocCurve | None:
    """The curve of scores of infected models (`positives`) against clean ones; None without both kinds."""
    if not len(positives) or not len(negatives):
        return None
    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    cuts = np.unique(np.concatenate([pos, neg]))[::-1]
    fpr = [0.0] + [float(np.mean(neg >= c)) for c in cuts]
    tpr = [0.0] + [float(np.mean(pos >= c)) for c in cuts]
    area = float(np.sum(np.diff(fpr) * (np.array(tpr[1:]) + np.array(tpr[:-1])) / 2))
    return RocCurve(tuple(fpr), tuple(tpr), (float("inf"), *map(float, cuts)), area)


def roc_image(curve: RocCurve, *, verdict_point: tuple[float, float] | None = None, title: str = "") -> Image.Image:
    """The curve on the unit square with the chance diagonal; `verdict_point` (false-alarm rate, detection rate)
    marks where the verdicts themselves sit."""
    image = Image.new("RGB", (LEFT + SIZE + 30, TOP + SIZE + 50), "white")
    draw = ImageDraw.Draw(image)
    at = lambda fpr, tpr: (LEFT + fpr * SIZE, TOP + (1 - tpr) * SIZE)
    draw.text((10, 10), title or f"ROC of the audit's score: AUC {curve.auc:.3f}", fill=BLACK)
    draw.rectangle([*at(0, 1), *at(1, 0)], outline=BLACK)
    draw.line([at(0, 0), at(1, 1)], fill=GREY)
    for tick in (0.0, 0.5, 1.0):
        x, y = at(tick, tick)
        draw.text((x - 8, TOP + SIZE + 4), f"{tick:g}", fill=BLACK)
        draw.text((LEFT - 22, y - 6), f"{tick:g}", fill=BLACK)
    draw.text((LEFT + SIZE / 2 - 75, TOP + SIZE + 20), "clean models called infected", fill=BLACK)
    draw.text((4, TOP - 16), "infected models found", fill=BLACK)
    points = [at(f, t) for f, t in zip(curve.false_positive_rates, curve.true_positive_rates)] + [at(1, 1)]
    draw.line(points, fill=BLUE, width=3)
    if verdict_point is not None:
        x, y = at(*verdict_point)
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=RED)
        draw.text((min(x + 8, LEFT + SIZE - 50), y + 6), "verdicts", fill=RED)
    return image


def save_roc(path: str | os.PathLike, curve: RocCurve, *, verdict_point: tuple[float, float] | None = None,
             title: str = "") -> None:
    save_png_atomic(roc_image(curve, verdict_point=verdict_point, title=title), path)
