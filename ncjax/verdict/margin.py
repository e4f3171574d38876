"""MM-BD's statistic: is one label's largest achievable margin abnormally large for this model?

The other labels' margins make the null: a Gamma fitted to them by moments (shifted to be positive where some are
negative). The largest margin's p-value is that of the largest of K - 1 draws from it: 1 - F(largest)^(K - 1).
A small p-value flags the label (Wang, Miller and Kesidis, IEEE S&P 2024, with their order-statistic p-value; the
threshold is ncjax's, measured).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc

from ncjax.errors import ConfigError
from ncjax.verdict.per_label import per_label

# Chosen on the attack benchmark's dev split (experiments/attack_benchmark.md): MM-BD's own 0.05 called the real
# clean GTSRB twin infected (p 0.044), and the demo's clean twin reaches 2.5e-4; 1e-4 kept every dev clean model clean.
DEFAULT_MAX_P = 1e-4


@dataclass(frozen=True)
class MarginScore:
    labels: np.ndarray  # (K,)
    margins: np.ndarray  # (K,)
    top_label: int  # the label with the largest margin
    largest: float
    median: float
    ratio: float  # largest / median margin (inf where the median is not positive)
    p_value: float  # of the largest margin under the null fitted to the others
    max_p: float
    flagged: tuple[int, ...]  # the top label where p_value < max_p
    note: str | None = None  # why the statistic cannot be read

    def p_text(self) -> str:
        """The p-value for people: two significant digits, or a bound below float32's reach."""
        return "< 1e-6" if self.p_value < 1e-6 else f"{self.p_value:.2g}"


def gamma_order_p(largest: float, others: np.ndarray) -> float:
    """P(the largest of len(others) Gamma draws fitted to `others` >= largest)."""
    shift = min(0.0, float(others.min())) - 1e-6  # a Gamma lives on positive values
    values = others - shift
    mean, var = float(values.mean()), float(values.var())
    if var <= 0:
        return 0.0 if largest - shift > mean else 1.0
    cdf = float(gammainc(mean**2 / var, (largest - shift) / (var / mean)))
    return float(1.0 - cdf ** len(others))


def margin_score(margins, labels=None, *, max_p: float = DEFAULT_MAX_P) -> MarginScore:
    """The statistic of one model's per-label largest margins (MarginResult.per_label().margins)."""
    if not (isinstance(max_p, (int, float)) and not isinstance(max_p, bool) and 0 < max_p < 1):
        raise ConfigError(f"max_p must be a probability in (0, 1), got {max_p!r}.")
    margins, labels = per_label(margins, labels, what="margins")
    top = int(np.argmax(margins))
    largest, median = float(margins[top]), float(np.median(margins))
    ratio = largest / median if median > 0 else float("inf")
    if len(margins) < 4:
        note = f"only {len(margins)} label(s): a null needs at least 3 other labels; nothing flagged."
        return MarginScore(labels, margins, int(labels[top]), largest, median, ratio, 1.0, float(max_p), (), note)
    p = gamma_order_p(largest, np.delete(margins, top))
    flagged = (int(labels[top]),) if p < max_p else ()
    return MarginScore(labels, margins, int(labels[top]), largest, median, ratio, p, float(max_p), flagged)
