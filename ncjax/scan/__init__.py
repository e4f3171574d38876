"""Many trigger searches at once: slots (what each search is), the plan (chunks and lanes), the compiled steps,
the engine that runs them with checkpoints, the focused search's summary, each label's best restart, the
source-specific searches (of candidates, or of every pair), the maximum-margin search of every label, and what
a scan will cost before it runs."""
from ncjax.scan.compile_cache import disable_compile_cache, enable_compile_cache
from ncjax.scan.engine import scan_all_labels, scan_slots
from ncjax.scan.focus import FocusSummary, summarize_focus
from ncjax.scan.margin_result import LabelMargins, MarginResult
from ncjax.scan.margins import scan_margins
from ncjax.scan.pairs import PAIR_SCAN_LIMIT, PairNorms, scan_pairs
from ncjax.scan.restarts import LabelTriggers, best_over_restarts
from ncjax.scan.result import EpochLogs, ScanProgress, ScanResult
from ncjax.scan.slots import Slot, label_slots, restart_slots, source_slots
from ncjax.scan.sources import check_candidates, check_sources
from ncjax.scan.work import DEFAULT_MAX_HOURS, WorkEstimate, estimate_work

__all__ = [
    "DEFAULT_MAX_HOURS", "PAIR_SCAN_LIMIT", "EpochLogs", "FocusSummary", "LabelMargins", "LabelTriggers",
    "MarginResult", "PairNorms", "ScanProgress", "ScanResult", "Slot", "WorkEstimate", "best_over_restarts",
    "check_candidates", "check_sources", "disable_compile_cache", "enable_compile_cache", "estimate_work",
    "label_slots", "restart_slots", "scan_all_labels", "scan_margins", "scan_pairs", "scan_slots", "source_slots",
    "summarize_focus",
]
