"""The mitigation half of Neural Cleanse: unlearning, pruning and input filtering with reversed triggers.

`mitigate` repairs a model with the triggers a scan found (a `TriggerSet`, read with `load_triggers`) and
measures the repair; `save_model` writes it back in its own format; `InputFilter` flags inputs instead."""
from ncjax.mitigation.api import MitigationResult, mitigate
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.input_filter import FilterRates, InputFilter, load_filter
from ncjax.mitigation.measure import Measurement
from ncjax.mitigation.progress import MitigationProgress
from ncjax.mitigation.prune import PruneCurve
from ncjax.mitigation.unlearn import UnlearnLog
from ncjax.mitigation.write import save_model
from ncjax.pipeline.triggers import TriggerSet, load_triggers

__all__ = ["FilterRates", "InputFilter", "Measurement", "MitigationConfig", "MitigationProgress", "MitigationResult",
           "PruneCurve", "TriggerSet", "UnlearnLog", "load_filter", "load_triggers", "mitigate", "save_model"]
