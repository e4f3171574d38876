"""AuditConfig: where an audit's scans run (in this process, or as Ray tasks) and how; validated when built.

Local is the default: one model after another on this process's default device, no cluster, no extra
dependency. With `ray` set ("auto": the running cluster this machine knows, else a local one started for the
audit; or a cluster's address), every model is one Ray task. A task asks for `gpus_per_model` GPUs where the
cluster has GPUs, else `cpus_per_model` CPUs (by default a whole node's, the smallest node's: XLA spreads one
scan over every core it sees, so two scans on one node's cores only take turns). A task whose worker dies is
run again on another worker, up to `retries` times, resuming the scan's last checkpoint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ncjax.config import setting
from ncjax.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """Settings of ncjax.audit beyond what it scans."""

    ray: str | None = setting(None, help="run each model as a Ray task: 'auto' (this machine's running cluster, "
                                         "else a local one started for the audit) or a cluster address such as "
                                         "ray://head:10001; needs pip install 'ncjax[ray]'. Not given: one model "
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
        if self.cpus_per_model is not None:
            _positive(self, "cpus_per_model")
        _positive(self, "gpus_per_model")
        if self.gpus_per_model > 1 and self.gpus_per_model != int(self.gpus_per_model):
            raise ConfigError("AuditConfig.gpus_per_model above 1 must be a whole number (Ray shares only a single "
                              f"GPU), got {self.gpus_per_model!r}.")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"AuditConfig.retries must be a whole number >= 0, got {self.retries!r}.")
        if not isinstance(self.progress, bool):
            raise ConfigError(f"AuditConfig.progress must be True or False, got {self.progress!r}.")


def _positive(config: AuditConfig, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"AuditConfig.{name} must be a finite number > 0, got {value!r}.")
