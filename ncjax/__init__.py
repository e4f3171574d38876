"""ncjax: Neural Cleanse backdoor scanning in JAX."""
from ncjax.core.xla_flags import configure_xla_flags

configure_xla_flags()  # must run before JAX initializes a backend

from ncjax.auditing.api import AuditResult, audit
from ncjax.auditing.config import AuditConfig, ScanSettings
from ncjax.auditing.items import AuditItem
from ncjax.core.version import __version__ as __version__
from ncjax.data.images import load_images
from ncjax.data.preprocess import Preprocessing
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
)
from ncjax.lab.inject import Backdoor, TrainConfig, train_classifier
from ncjax.mitigation.api import MitigationResult, mitigate
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.input_filter import FilterRates, InputFilter, load_filter
from ncjax.mitigation.measure import Measurement
from ncjax.mitigation.progress import MitigationProgress
from ncjax.mitigation.prune import PruneCurve
from ncjax.mitigation.triggers import TriggerSet, load_triggers
from ncjax.mitigation.unlearn import UnlearnLog
from ncjax.mitigation.write import save_model
from ncjax.models.classifier import Classifier, LayerSummary
from ncjax.models.keras.graph import supported_layers
from ncjax.models.keras.save import save_keras_h5
from ncjax.models.loading import load_model
from ncjax.pipeline.model_scan import DecisionConfig, PipelineEvent, ScanOutcome, scan_model
from ncjax.scan.compile_cache import disable_compile_cache, enable_compile_cache
from ncjax.scan.engine import scan_all_labels, scan_slots
from ncjax.scan.restarts import LabelTriggers, best_over_restarts
from ncjax.scan.result import EpochLogs, ScanProgress, ScanResult
from ncjax.scan.slots import Slot, label_slots, restart_slots, source_slots
from ncjax.scan.sources import check_candidates, check_sources
from ncjax.search.config import ScanConfig
from ncjax.verdict.decision import Verdict, decide
from ncjax.verdict.outlier import GapResult, OutlierResult, gap_outliers, l1_norms, mad_outliers
from ncjax.verdict.score import ScoreResult, ratio_score
from ncjax.verdict.source_check import SourceCheck

__all__ = [
    "AuditConfig",
    "AuditItem",
    "AuditResult",
    "Backdoor",
    "CheckpointError",
    "Classifier",
    "ConfigError",
    "DataError",
    "DecisionConfig",
    "EpochLogs",
    "FilterRates",
    "GapResult",
    "InjectionError",
    "InputFilter",
    "LabelTriggers",
    "LayerSummary",
    "Measurement",
    "MissingDependencyError",
    "MitigationConfig",
    "MitigationError",
    "MitigationProgress",
    "MitigationResult",
    "ModelFileError",
    "ModelNotFoundError",
    "NCJaxError",
    "OnnxOpError",
    "OutlierResult",
    "PipelineEvent",
    "PreflightError",
    "Preprocessing",
    "PruneCurve",
    "SaveError",
    "ScanConfig",
    "ScanInputError",
    "ScanOutcome",
    "ScanProgress",
    "ScanResult",
    "ScanSettings",
    "ScoreResult",
    "Slot",
    "SourceCheck",
    "TrainConfig",
    "TriggerSet",
    "UnlearnLog",
    "UnsupportedLayerError",
    "UnsupportedModelError",
    "UsageError",
    "Verdict",
    "audit",
    "best_over_restarts",
    "check_candidates",
    "check_sources",
    "decide",
    "gap_outliers",
    "l1_norms",
    "label_slots",
    "load_filter",
    "load_images",
    "load_model",
    "load_triggers",
    "mad_outliers",
    "mitigate",
    "ratio_score",
    "restart_slots",
    "save_keras_h5",
    "enable_compile_cache",
    "disable_compile_cache",
    "save_model",
    "scan_all_labels",
    "scan_model",
    "scan_slots",
    "source_slots",
    "supported_layers",
    "train_classifier",
]
