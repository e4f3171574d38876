"""AuditConfig: where an audit's scans run (in this process, or as Ray tasks) and how; validated when built.

Local is the default: one model after another on this process's default device, no cluster, no extra
dependency. With `ray` set ("auto": the running cluster this machine knows, else a local one started for the
audit; or a cluster's address), every model is one Ray task. A task asks for `gpus_per_model` GPUs where the
cluster has GPUs, else `cpus_per_model` CPUs (by default a whole node's, the smallest node's: XLA spreads one
scan over every core it sees, so two scans on one node's cores only take turns). A task whose worker dies is
run again on another worker, up to `retries` times, resuming the scan's last checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass

from ncjax.core.checks import check_flag, check_number, check_whole
from ncjax.errors import ConfigError
from ncjax.pipeline.model_scan import DecisionConfig
from ncjax.scan.work import DEFAULT_MAX_HOURS
from ncjax.search.config import ScanConfig, setting


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """Settings of ncjax.audit beyond what it scans."""

    ray: str | None = setting(None, help="run each model as a Ray task: 'auto' (this machine's running cluster, "
                                         "else a local one started for the audit) or a cluster address such as "
                                         "ray://head:10001; needs pip install 'ray>=2.9'. Not given: one model "
                                         "after another in this process")
    cpus_per_model: float | None = setting(None, help="Ray, on a cluster without GPUs: CPUs each model's task asks "
                                                      "for (default: the smallest node's whole count)")
    gpus_per_model: float = setting(1.0, help="Ray, on a cluster with GPUs: GPUs each model's task asks for (a "
                                              "share below 1 puts several models on one GPU)")
    retries: int = setting(3, help="Ray: times a model's task is run again when its worker dies (killed, out of "
                                   "memory, node lost); it resumes the scan's last checkpoint")
    progress: bool = setting(True, help="a progress bar counting models on stderr")

    def __post_init__(self) -> None:
        if self.ray is not None and (not isinstance(self.ray, str) or not self.ray.strip()):
            raise ConfigError(f"AuditConfig.ray must be 'auto' or a Ray cluster address, got {self.ray!r}.")
        check_number(self, "cpus_per_model", low=0, low_open=True, optional=True)
        check_number(self, "gpus_per_model", low=0, low_open=True)
        if self.gpus_per_model > 1 and self.gpus_per_model != int(self.gpus_per_model):
            raise ConfigError("AuditConfig.gpus_per_model above 1 must be a whole number (Ray shares only a single "
                              f"GPU), got {self.gpus_per_model!r}.")
        check_whole(self, "retries", low=0)
        check_flag(self, "progress")


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """How an audit scans each model: the settings `python -m ncjax.run`'s flags give, as data (a manifest row's
    preprocess, layout and data key override them for its model)."""

    config: ScanConfig | None = setting(None, help="the scan's settings (None: ScanConfig.focused() on CPUs, "
                                                   "ScanConfig.paper() on accelerators)")
    decision: DecisionConfig = setting(DecisionConfig(), help="how the norms become a verdict")
    labels: tuple[int, ...] | None = setting(None, help="the labels to scan (None: all)")
    seed: int = setting(0, help="the PRNG seed of every model's scan")
    force: bool = setting(False, help="scan even when the pre-flight check finds the model does not see the "
                                      "images as set, or its scan's estimated time or memory is beyond the limits")
    max_hours: float = setting(DEFAULT_MAX_HOURS, help="refuse a model whose label search is estimated to take "
                                                       "longer than this many hours (its row says so)")
    preprocess_auto: bool = setting(False, help="where a model's clean images are labelled raw pixels, choose its "
                                                "input convention from them, as --preprocess auto does (a manifest "
                                                "row's preprocess overrides it); elsewhere the config's preprocessing "
                                                "holds")
    prefix: str = setting("gtsrb", help="the trigger pictures' file-name prefix")
    compile_cache: bool = setting(True, help="keep compiled steps in compile_cache_dir and reuse them")
    compile_cache_dir: str | None = setting(None, help="the compile cache's folder (None: $NCJAX_COMPILE_CACHE, "
                                                       "else ~/.cache/ncjax/jax-compile)")

    def __post_init__(self) -> None:
        if self.config is not None and not isinstance(self.config, ScanConfig):
            raise ConfigError(f"ScanSettings.config must be a ScanConfig or None, got {type(self.config).__name__}.")
        if not isinstance(self.decision, DecisionConfig):
            raise ConfigError(f"ScanSettings.decision must be a DecisionConfig, got {type(self.decision).__name__}.")
        if self.labels is not None and (not isinstance(self.labels, tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self.labels)):
            raise ConfigError(f"ScanSettings.labels must be a tuple of label numbers or None, got {self.labels!r}.")
        check_whole(self, "seed", low=0)
        check_number(self, "max_hours", low=0, low_open=True)
        if self.seed >= 2**32:
            raise ConfigError(f"ScanSettings.seed must be below 2**32, got {self.seed!r}.")
        if not isinstance(self.prefix, str) or not self.prefix or any(c in self.prefix for c in "/\\\0") or \
                self.prefix in (".", ".."):
            raise ConfigError(f"ScanSettings.prefix must be a file-name prefix (no path), got {self.prefix!r}.")
        for name in ("force", "preprocess_auto", "compile_cache"):
            check_flag(self, name)
