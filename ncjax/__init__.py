"""ncjax: Neural Cleanse backdoor scanning in JAX."""
from ncjax._xla_flags import configure_xla_flags

configure_xla_flags()  # must run before JAX initializes a backend

from ncjax.classifier import Classifier  # noqa: E402
from ncjax.auditing.api import AuditResult, audit  # noqa: E402
from ncjax.auditing.config import AuditConfig, ScanSettings  # noqa: E402
from ncjax.auditing.items import AuditItem  # noqa: E402
from ncjax.compile_cache import disable_compile_cache, enable_compile_cache  # noqa: E402
from ncjax.config import ScanConfig  # noqa: E402
from ncjax.data import load_images  # noqa: E402
from ncjax.errors import (  # noqa: E402
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
from ncjax.inject import Backdoor, TrainConfig, train_classifier  # noqa: E402
from ncjax.classifier import LayerSummary  # noqa: E402
from ncjax.keras.graph import supported_layers  # noqa: E402
from ncjax.keras.save import save_keras_h5  # noqa: E402
from ncjax.loading import load_model  # noqa: E402
from ncjax.mitigation.api import MitigationResult, mitigate  # noqa: E402
from ncjax.mitigation.config import MitigationConfig  # noqa: E402
from ncjax.mitigation.input_filter import FilterRates, InputFilter, load_filter  # noqa: E402
from ncjax.mitigation.measure import Measurement  # noqa: E402
from ncjax.mitigation.progress import MitigationProgress  # noqa: E402
from ncjax.mitigation.prune import PruneCurve  # noqa: E402
from ncjax.mitigation.triggers import TriggerSet, load_triggers  # noqa: E402
from ncjax.mitigation.unlearn import UnlearnLog  # noqa: E402
from ncjax.mitigation.write import save_model  # noqa: E402
from ncjax.outlier import GapResult, OutlierResult, gap_outliers, l1_norms, mad_outliers  # noqa: E402
from ncjax.preprocess import Preprocessing  # noqa: E402
from ncjax.result import EpochLogs, ScanProgress, ScanResult  # noqa: E402
from ncjax.restarts import LabelTriggers, best_over_restarts  # noqa: E402
from ncjax.scan import scan_all_labels, scan_slots  # noqa: E402
from ncjax.pipeline import DecisionConfig, PipelineEvent, ScanOutcome, scan_model  # noqa: E402
from ncjax.score import ScoreResult, ratio_score  # noqa: E402
from ncjax.source_check import SourceCheck  # noqa: E402
from ncjax.sources import check_candidates, check_sources  # noqa: E402
from ncjax.slots import Slot, label_slots, restart_slots, source_slots  # noqa: E402
from ncjax.verdict import Verdict, decide  # noqa: E402

from ncjax.version import __version__  # noqa: E402

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
