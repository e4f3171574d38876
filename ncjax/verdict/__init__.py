"""From trigger norms to a verdict, in numpy only: the reference's MAD test and the gap test (outlier), the ratio
score, what a source-specific check found (source_check), the pair statistic, MM-BD's margin statistic, and the
decision."""
from ncjax.verdict.decision import Verdict, decide
from ncjax.verdict.margin import MarginScore, margin_score
from ncjax.verdict.outlier import GapResult, OutlierResult, gap_outliers, l1_norms, mad_outliers
from ncjax.verdict.pairs import PairFinding, PairScore, pair_residuals, pair_score
from ncjax.verdict.score import ScoreResult, ratio_score
from ncjax.verdict.source_check import SourceCheck

__all__ = ["GapResult", "MarginScore", "OutlierResult", "PairFinding", "PairScore", "ScoreResult", "SourceCheck",
           "Verdict", "decide", "gap_outliers", "l1_norms", "mad_outliers", "margin_score", "pair_residuals",
           "pair_score", "ratio_score"]
