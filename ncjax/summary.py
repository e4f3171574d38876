"""summary.png: every label's mask in a grid (flagged ones outlined red) above a bar chart of the norms with
the median and the flagging threshold drawn, to be read at a glance."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw

from ncjax.outlier import OutlierResult

RED, GREY, BLACK, BLUE = (220, 30, 30), (150, 150, 150), (20, 20, 20), (40, 90, 200)


def _label(draw: ImageDraw.ImageDraw, xy, text: str, colour) -> None:
    """Text on a white box, readable over the bars."""
    box = draw.textbbox(xy, text)
    draw.rectangle([box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1], fill="white")
    draw.text(xy, text, fill=colour)


def summary_image(masks: np.ndarray, outliers: OutlierResult, *, title: str = "", columns: int = 11,
                  scale: int = 3) -> Image.Image:
    n, h, w = masks.shape
    rows = math.ceil(n / columns)
    cell_w, cell_h = w * scale + 8, h * scale + 20
    chart_h, margin = 220, 30
    width = max(columns * cell_w + 2 * margin, 600)
    image = Image.new("RGB", (width, 40 + rows * cell_h + chart_h + 2 * margin), "white")
    draw = ImageDraw.Draw(image)
    draw.text((margin, 10), title or "Neural Cleanse: reversed trigger masks and their L1 norms", fill=BLACK)
    flagged = set(outliers.flagged)
    for i, label in enumerate(outliers.labels):
        r, c = divmod(i, columns)
        x, y = margin + c * cell_w, 40 + r * cell_h
        tile = Image.fromarray(np.clip(masks[i] * 255, 0, 255).astype(np.uint8), "L").resize((w * scale, h * scale),
                                                                                           Image.NEAREST)
        image.paste(tile.convert("RGB"), (x + 4, y + 14))
        colour = RED if int(label) in flagged else GREY
        draw.rectangle([x + 2, y + 12, x + 5 + w * scale, y + 15 + h * scale], outline=colour,
                       width=3 if colour == RED else 1)
        draw.text((x + 4, y), f"{int(label)}: {outliers.norms[i]:.1f}", fill=RED if colour == RED else BLACK)
    # Bar chart of the norms, label order, median and threshold lines.
    top = 40 + rows * cell_h + margin
    left, right, bottom = margin + 30, width - margin, top + chart_h - 20
    peak = float(max(outliers.norms.max(), outliers.median)) * 1.05 or 1.0
    to_y = lambda v: bottom - (bottom - top) * (v / peak)  # noqa: E731
    bar = (right - left) / n
    for i, label in enumerate(outliers.labels):
        colour = RED if int(label) in flagged else BLUE
        draw.rectangle([left + i * bar + 1, to_y(outliers.norms[i]), left + (i + 1) * bar - 1, bottom], fill=colour)
    draw.line([left, to_y(outliers.median), right, to_y(outliers.median)], fill=BLACK, width=2)
    _label(draw, (left + 4, to_y(outliers.median) - 12), f"median {outliers.median:.1f}", BLACK)
    if np.isfinite(outliers.mad) and outliers.mad > 0:
        cut = outliers.median - outliers.threshold * outliers.mad
        if cut > 0:
            draw.line([left, to_y(cut), right, to_y(cut)], fill=RED, width=1)
            _label(draw, (right - 190, to_y(cut) - 12), f"flag below {cut:.1f} (index > {outliers.threshold:g})", RED)
    draw.line([left, bottom, right, bottom], fill=BLACK)
    draw.text((left, bottom + 4), f"labels {int(outliers.labels[0])} .. {int(outliers.labels[-1])}; anomaly index "
                                  f"{outliers.anomaly_index:.2f}", fill=BLACK)
    return image


def save_summary(path: str | os.PathLike, masks: np.ndarray, outliers: OutlierResult, *, title: str = "") -> None:
    summary_image(masks, outliers, title=title).save(path)
