"""summary.png: every label's mask in a grid, the verdict's labels' masks and fusions (trigger over black, as the
reference's fusion pictures) enlarged, and a bar chart of the norms with the median and the flagging threshold,
to be read at a glance.

Colours: red for the labels the verdict names infected; orange for the labels it names suspicious, for candidates
the source check set aside, and under the gap or the reference's rule for labels the MAD rule flags but the
verdict does not keep; grey/blue for the rest. In a focused search, a star marks the labels frozen after the warm-up.
"""
from __future__ import annotations

import math
import os
from collections.abc import Collection

import numpy as np
from PIL import Image, ImageDraw

from ncjax.models.safe_files import save_png_atomic
from ncjax.pipeline.pictures import to_image
from ncjax.verdict.decision import Verdict

RED, ORANGE, GREY, BLACK, BLUE = (220, 30, 30), (240, 140, 0), (150, 150, 150), (20, 20, 20), (40, 90, 200)
PURPLE = (140, 60, 170)
MARGIN, CHART_H, ZOOM = 30, 220, 4


def _label(draw: ImageDraw.ImageDraw, xy, text: str, colour) -> None:
    """Text on a white box, readable over the bars."""
    box = draw.textbbox(xy, text)
    draw.rectangle([box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1], fill="white")
    draw.text(xy, text, fill=colour)


def label_colours(verdict: Verdict) -> dict[int, tuple[int, int, int]]:
    """Red for the verdict's infected labels; orange for the labels it names suspicious, the candidates the source
    check set aside and, under the gap or the reference's rule, the other labels the reference's rule flags (the
    score rule reports those flags but does not read them). An inconclusive verdict's labels, which never reached
    the attack-success threshold, are purple: nothing is suspected of them."""
    if verdict.status == "inconclusive":
        return {label: PURPLE for label in verdict.labels}
    infected = set(verdict.labels) if verdict.infected else set()
    flagged = set(verdict.mad.flagged) if verdict.rule != "score" else set()
    named = flagged | set(verdict.natural) | (set() if verdict.infected else set(verdict.labels))
    colours = {label: ORANGE for label in named if label not in infected}
    return colours | {label: RED for label in infected}


def _mask_tile(mask: np.ndarray, scale: int) -> Image.Image:
    h, w = mask.shape
    tile = Image.fromarray(np.clip(mask * 255, 0, 255).astype(np.uint8), "L")
    return tile.resize((w * scale, h * scale), Image.Resampling.NEAREST).convert("RGB")


def _fusion_tile(mask: np.ndarray, pattern: np.ndarray, scale: int) -> Image.Image:
    h, w = mask.shape
    return to_image(mask[..., None] * pattern).resize((w * scale, h * scale), Image.Resampling.NEAREST).convert("RGB")


def _legend(draw: ImageDraw.ImageDraw, y: int, frozen: bool) -> None:
    x = MARGIN
    for colour, text in ((RED, "infected (the verdict)"), (ORANGE, "suspicious or set aside"),
                         (PURPLE, "never reached the threshold"), (GREY, "not flagged")):
        draw.rectangle([x, y + 2, x + 10, y + 12], fill=colour)
        draw.text((x + 14, y), text, fill=BLACK)
        x += 24 + int(draw.textlength(text))
    if frozen:
        draw.text((x, y), "*: frozen after the warm-up", fill=BLACK)


def _grid(image: Image.Image, masks: np.ndarray, verdict: Verdict, colours, top: int, columns: int, scale: int,
          frozen: Collection[int]) -> int:
    """Every mask with its label and norm; returns the y below the grid."""
    draw = ImageDraw.Draw(image)
    n, h, w = masks.shape
    cell_w, cell_h = w * scale + 8, h * scale + 20
    for i, label in enumerate(verdict.mad.labels):
        r, c = divmod(i, columns)
        x, y = MARGIN + c * cell_w, top + r * cell_h
        image.paste(_mask_tile(masks[i], scale), (x + 4, y + 14))
        colour = colours.get(int(label), GREY)
        draw.rectangle([x + 2, y + 12, x + 5 + w * scale, y + 15 + h * scale], outline=colour,
                       width=1 if colour == GREY else 3)
        star = "*" if int(label) in frozen else ""
        draw.text((x + 4, y), f"{int(label)}: {verdict.mad.norms[i]:.1f}{star}",
                  fill=BLACK if colour == GREY else colour)
    return top + math.ceil(n / columns) * cell_h


def _zoomed(image: Image.Image, masks, patterns, verdict: Verdict, colours, top: int) -> int:
    """The verdict's labels (infected or suspicious) enlarged: mask and fusion; returns the y below."""
    draw = ImageDraw.Draw(image)
    _, h, w = masks.shape
    x = MARGIN
    index = {int(label): i for i, label in enumerate(verdict.mad.labels)}
    for label in verdict.labels:
        i = index[int(label)]
        if x + 2 * w * ZOOM + 10 > image.width - MARGIN:
            break
        colour = colours.get(int(label), GREY)
        draw.text((x, top), f"label {int(label)} (norm {verdict.mad.norms[i]:.1f}): mask, fusion", fill=colour)
        for k, tile in enumerate((_mask_tile(masks[i], ZOOM), _fusion_tile(masks[i], patterns[i], ZOOM))):
            left = x + k * (w * ZOOM + 6)
            image.paste(tile, (left, top + 14))
            draw.rectangle([left - 2, top + 12, left + w * ZOOM + 1, top + 15 + h * ZOOM], outline=colour, width=2)
        x += max(2 * (w * ZOOM + 6), int(draw.textlength("label 00 (norm 000.0): mask, fusion"))) + 24
    return top + h * ZOOM + 30 if verdict.labels else top


def _chart(image: Image.Image, verdict: Verdict, colours, top: int) -> None:
    """Bars of the norms in label order, with the median and the reference's flagging threshold."""
    draw = ImageDraw.Draw(image)
    outliers = verdict.mad
    n = len(outliers.labels)
    left, right, bottom = MARGIN + 30, image.width - MARGIN, top + CHART_H - 20
    peak = float(max(outliers.norms.max(), outliers.median)) * 1.05 or 1.0
    to_y = lambda v: bottom - (bottom - top) * (v / peak)
    bar = (right - left) / n
    for i, label in enumerate(outliers.labels):
        colour = colours.get(int(label), BLUE)
        draw.rectangle([left + i * bar + 1, to_y(outliers.norms[i]), left + (i + 1) * bar - 1, bottom], fill=colour)
    draw.line([left, to_y(outliers.median), right, to_y(outliers.median)], fill=BLACK, width=2)
    _label(draw, (left + 4, to_y(outliers.median) - 12), f"median {outliers.median:.1f}", BLACK)
    if np.isfinite(outliers.mad) and outliers.mad > 0:
        cut = outliers.median - outliers.threshold * outliers.mad
        if cut > 0:
            draw.line([left, to_y(cut), right, to_y(cut)], fill=ORANGE, width=1)
            _label(draw, (right - 190, to_y(cut) - 12), f"flag below {cut:.1f} (index > {outliers.threshold:g})",
                   ORANGE)
    draw.line([left, bottom, right, bottom], fill=BLACK)
    draw.text((left, bottom + 4), f"labels {int(outliers.labels[0])} .. {int(outliers.labels[-1])}; anomaly index "
                                  f"{outliers.anomaly_index:.2f}", fill=BLACK)


def _margin_chart(image: Image.Image, verdict: Verdict, colours, top: int) -> None:
    """Bars of each label's largest logit margin (the margin search), the median, and the statistic."""
    margin = verdict.margin
    assert margin is not None  # drawn only where the rule read the margins
    draw = ImageDraw.Draw(image)
    left, right, bottom = MARGIN + 30, image.width - MARGIN, top + CHART_H - 20
    peak = float(max(margin.margins.max(), margin.median, 0.0)) * 1.05 or 1.0
    to_y = lambda v: bottom - (bottom - top) * (max(float(v), 0.0) / peak)
    bar = (right - left) / len(margin.labels)
    for i, label in enumerate(margin.labels):
        colour = RED if int(label) in margin.flagged else colours.get(int(label), BLUE)
        draw.rectangle([left + i * bar + 1, to_y(margin.margins[i]), left + (i + 1) * bar - 1, bottom], fill=colour)
    draw.line([left, to_y(margin.median), right, to_y(margin.median)], fill=BLACK, width=2)
    _label(draw, (left + 4, to_y(margin.median) - 12), f"median margin {margin.median:.1f}", BLACK)
    draw.line([left, bottom, right, bottom], fill=BLACK)
    read = margin.note or (f"largest: label {margin.top_label}, p {margin.p_text()} "
                           f"({'<' if margin.flagged else '>='} {margin.max_p:g})")
    draw.text((left, bottom + 4), f"maximum-margin search: each label's largest logit margin; {read}", fill=BLACK)


def summary_image(masks: np.ndarray, patterns: np.ndarray, verdict: Verdict, *, title: str = "",
                  columns: int = 11, scale: int = 3, frozen: Collection[int] = ()) -> Image.Image:
    """The picture: title, legend, mask grid, the verdict's labels enlarged, the norms' bar chart and, where the
    verdict read them, the margins' bar chart; `frozen`:
    the labels a focused search froze after its warm-up."""
    n, h, w = masks.shape
    rows = math.ceil(n / columns)
    zoom_h = h * ZOOM + 30 if verdict.labels else 0
    width = max(columns * (w * scale + 8) + 2 * MARGIN, 720)
    charts = CHART_H + (CHART_H + MARGIN if verdict.margin is not None else 0)
    image = Image.new("RGB", (width, 60 + rows * (h * scale + 20) + zoom_h + charts + 2 * MARGIN), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 10), title or "Neural Cleanse: reversed trigger masks and their L1 norms", fill=BLACK)
    frozen = {int(label) for label in frozen}
    _legend(draw, 28, bool(frozen))
    colours = label_colours(verdict)
    below = _grid(image, masks, verdict, colours, 50, columns, scale, frozen)
    below = _zoomed(image, masks, patterns, verdict, colours, below + 10)
    _chart(image, verdict, colours, below + MARGIN)
    if verdict.margin is not None:
        _margin_chart(image, verdict, colours, below + MARGIN + CHART_H + MARGIN)
    return image


def save_summary(path: str | os.PathLike, masks: np.ndarray, patterns: np.ndarray, verdict: Verdict, *,
                 title: str = "", frozen: Collection[int] = ()) -> None:
    save_png_atomic(summary_image(masks, patterns, verdict, title=title, frozen=frozen), path)
