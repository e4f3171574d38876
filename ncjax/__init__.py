"""ncjax: Neural Cleanse backdoor scanning in JAX."""
from ncjax.core.xla_flags import configure_xla_flags

configure_xla_flags()  # must run before JAX initializes a backend

from ncjax.auditing import AuditConfig, ScanSettings, audit
from ncjax.core.version import __version__ as __version__
from ncjax.data import Preprocessing, auto_convention, load_images
from ncjax.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InjectionError,
    MissingDependencyError,
    MitigationError,
    ModelFileError,
    ModelNotFoundError,
    NCJaxError,
    OnnxOpError,
    PreflightError,
    SaveError,
    ScanInputError,
    UnsupportedLayerError,
    UnsupportedModelError,
    UsageError,
    WorkLimitError,
    WriteError,
)
from ncjax.mitigation import MitigationConfig, TriggerSet, load_triggers, mitigate, save_model
from ncjax.models import Classifier, load_model
from ncjax.pipeline import DecisionConfig, scan_model
from ncjax.scan import (
    MarginResult,
    ScanResult,
    Slot,
    best_over_restarts,
    check_candidates,
    enable_compile_cache,
    estimate_work,
    restart_slots,
    scan_all_labels,
    scan_margins,
    scan_pairs,
    scan_slots,
    source_slots,
)
from ncjax.search import ScanConfig
from ncjax.verdict import Verdict, decide, l1_norms, margin_score, pair_score

# What a user calls; each subpackage's face (ncjax.models, ncjax.data, ncjax.scan, ncjax.verdict,
# ncjax.pipeline, ncjax.mitigation, ncjax.auditing, ncjax.lab) exports the rest.
__all__ = [
    "AuditConfig", "CheckpointError", "Classifier", "ConfigError", "DataError", "DecisionConfig", "InjectionError",
    "MarginResult", "MissingDependencyError", "MitigationConfig", "MitigationError", "ModelFileError",
    "ModelNotFoundError", "NCJaxError", "OnnxOpError", "PreflightError", "Preprocessing", "SaveError", "ScanConfig",
    "ScanInputError", "ScanResult", "ScanSettings", "Slot", "TriggerSet", "UnsupportedLayerError",
    "UnsupportedModelError", "UsageError", "Verdict", "WorkLimitError", "WriteError", "audit", "auto_convention",
    "best_over_restarts", "check_candidates", "decide", "enable_compile_cache", "estimate_work", "l1_norms",
    "load_images", "load_model", "load_triggers", "margin_score", "mitigate", "pair_score", "restart_slots",
    "save_model", "scan_all_labels", "scan_margins", "scan_model", "scan_pairs", "scan_slots", "source_slots",
]
