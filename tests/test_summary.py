"""summary.png: the verdict's labels in red, the reference's other flagged labels in orange, fusions beside masks."""
from __future__ import annotations

import numpy as np

from ncjax.pipeline.summary import GREY, ORANGE, PURPLE, RED, label_colours, summary_image
from ncjax.verdict.decision import decide

H = W = 8
SCALE, COLUMNS = 3, 11
CELL_W, CELL_H = W * SCALE + 8, H * SCALE + 20


def _scan(num_labels=20):
    rng = np.random.default_rng(0)
    masks = rng.uniform(0, 0.2, (num_labels, H, W)).astype(np.float32)
    masks[0, 5:7, 5:7] = 1.0
    patterns = np.zeros((num_labels, H, W, 3), np.float32)
    patterns[..., 1] = 255.0  # green triggers
    norms = [10.0, 60.0] + [100.0 + i for i in range(num_labels - 2)]  # 0: a clear outlier; 1: flagged, no gap
    return masks, patterns, decide(norms)


def _outline(image, index):
    r, c = divmod(index, COLUMNS)
    x, y = 30 + c * CELL_W, 50 + r * CELL_H
    return image.getpixel((x + 2, y + 13 + H * SCALE // 2))


def test_colours_follow_the_verdict_not_the_reference_rule():
    masks, patterns, verdict = _scan()
    assert verdict.infected and verdict.labels == (0,) and verdict.mad.flagged == (0, 1)
    assert label_colours(verdict) == {0: RED}  # the score rule reports the MAD flag on 1 but does not read it
    gap = decide(verdict.mad.norms, rule="gap")
    assert gap.infected and label_colours(gap) == {0: RED, 1: ORANGE}
    image = summary_image(masks, patterns, gap, title="t")
    assert _outline(image, 0) == RED and _outline(image, 1) == ORANGE and _outline(image, 5) == GREY


def test_the_verdicts_label_is_shown_with_its_fusion():
    masks, patterns, verdict = _scan()
    def green(image) -> int:
        pixels = np.asarray(image)
        return int(((pixels[..., 1] > 200) & (pixels[..., 0] < 50) & (pixels[..., 2] < 50)).sum())

    assert green(summary_image(masks, patterns, verdict)) == (2 * 4) ** 2  # label 0's 2x2 trigger, 4x larger
    assert green(summary_image(masks, patterns, decide([100.0 + i for i in range(20)]))) == 0  # clean: no panel


def test_suspicious_labels_are_orange_and_enlarged():
    masks, patterns, _ = _scan()
    verdict = decide([40.0, 42.0, 80.0] + [100.0 + i for i in range(17)])  # ratios 2.66 and 2.54
    assert verdict.status == "suspicious"
    assert label_colours(verdict) == {0: ORANGE, 1: ORANGE}
    image = summary_image(masks, patterns, verdict)
    assert _outline(image, 0) == ORANGE and _outline(image, 3) == GREY
    assert image.height > summary_image(masks, patterns, decide([100.0 + i for i in range(20)])).height


def test_an_inconclusive_verdicts_unreached_labels_are_purple_not_suspicious():
    masks, patterns, _ = _scan()
    reached = [True] * 20
    reached[4] = reached[7] = False
    verdict = decide([40.0] + [100.0 + i for i in range(19)], reached=reached)
    assert verdict.status == "inconclusive" and verdict.labels == (4, 7)
    assert label_colours(verdict) == {4: PURPLE, 7: PURPLE}
    image = summary_image(masks, patterns, verdict)
    assert _outline(image, 4) == PURPLE and _outline(image, 0) == GREY  # label 0's small norm is not read


def test_grayscale_patterns():
    masks, patterns, verdict = _scan()
    image = summary_image(masks, patterns[..., :1], verdict)
    assert image.mode == "RGB" and image.width >= 720


def test_the_margins_read_by_the_verdict_get_a_chart_with_the_flagged_label_in_red():
    import ncjax
    from ncjax.pipeline.summary import CHART_H, MARGIN

    masks, patterns, _ = _scan()
    norms, margins = [100.0 + i for i in range(20)], [100.0 + 3 * i for i in range(20)]
    verdict = decide(norms)
    quiet = decide(norms, rule="combined", margin=ncjax.margin_score(margins))
    loud = decide(norms, rule="combined", margin=ncjax.margin_score(margins[:7] + [900.0] + margins[8:]))
    assert (verdict.status, quiet.status, loud.status, loud.labels) == ("clean", "clean", "infected", (7,))
    plain, charted, flagged = (summary_image(masks, patterns, v) for v in (verdict, quiet, loud))
    assert charted.height == plain.height + CHART_H + MARGIN
    red = lambda image: int((np.asarray(image)[plain.height:] == RED).all(axis=-1).sum())
    assert red(charted) == 0 and red(flagged) > 100  # label 7's bar (and its enlarged trigger)
