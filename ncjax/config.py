"""ScanConfig: every setting of a scan, validated when built; the defaults are the reference's."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from ncjax.losses import LossName
from ncjax.errors import ConfigError
from ncjax.preprocess import Preprocessing


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    """Neural Cleanse settings. Defaults are the reference's (gtsrb_visualize_example.py, visualizer.py).

    One epoch is `nb_sample // batch_size` optimizer steps (31 by default); the cost schedule, best-mask
    tracking and early stopping act at the end of each epoch, per label.
    """

    batch_size: int = 32
    nb_sample: int = 1000  # sets the epoch length: nb_sample // batch_size steps
    max_epochs: int = 1000  # the reference's `steps`
    learning_rate: float = 0.1
    beta_1: float = 0.5
    beta_2: float = 0.9
    adam_epsilon: float = 1e-7
    init_cost: float = 1e-3
    cost_starts_at_zero: bool = True  # the reference: cost 0 until `patience` successful epochs
    patience: int = 5
    cost_multiplier: float = 2.0  # up by this, down by this ** 1.5
    early_stop: bool = True
    early_stop_threshold: float = 1.0
    early_stop_patience: int | None = None  # None: 5 * patience, as the reference
    attack_success_threshold: float = 0.99
    regularization: Literal["l1", "l2"] = "l1"
    upsample: int = 1  # mask super-pixel size
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    loss: LossName = "reference"
    # Execution (results do not depend on these beyond float rounding):
    # "highest": full float32 matmuls and convolutions, as the reference computed. "default" lets GPUs use
    # TF32 (10-bit mantissa) tensor cores and TPUs bfloat16; CPUs compute in float32 either way.
    matmul_precision: Literal["default", "high", "highest"] = "highest"
    label_chunk: int | None = None  # labels optimized together; None: measured default per backend
    steps_per_dispatch: int | None = None  # optimizer steps per compiled call; None: per backend

    def __post_init__(self) -> None:
        positive_ints = ("batch_size", "nb_sample", "max_epochs", "patience", "upsample")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ScanConfig.{name} must be a positive int, got {value!r}.")
        if self.nb_sample < self.batch_size:
            raise ConfigError(
                f"ScanConfig.nb_sample ({self.nb_sample}) must be at least batch_size ({self.batch_size}): "
                "an epoch is nb_sample // batch_size steps."
            )
        for name in ("learning_rate", "init_cost", "adam_epsilon"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"ScanConfig.{name} must be a positive number, got {value!r}.")
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"ScanConfig.{name} must be in [0, 1), got {value!r}.")
        if not self.cost_multiplier > 1:
            raise ConfigError(f"ScanConfig.cost_multiplier must be > 1, got {self.cost_multiplier!r}.")
        if not 0 < self.attack_success_threshold <= 1:
            raise ConfigError(
                f"ScanConfig.attack_success_threshold must be in (0, 1], got {self.attack_success_threshold!r}."
            )
        if not self.early_stop_threshold > 0:
            raise ConfigError(f"ScanConfig.early_stop_threshold must be > 0, got {self.early_stop_threshold!r}.")
        if self.early_stop_patience is not None and (
            not isinstance(self.early_stop_patience, int) or self.early_stop_patience < 1
        ):
            raise ConfigError(
                f"ScanConfig.early_stop_patience must be a positive int or None, got {self.early_stop_patience!r}."
            )
        if self.regularization not in ("l1", "l2"):
            raise ConfigError(f"ScanConfig.regularization must be 'l1' or 'l2', got {self.regularization!r}.")
        if self.loss not in ("reference", "crossentropy"):
            raise ConfigError(f"ScanConfig.loss must be 'reference' or 'crossentropy', got {self.loss!r}.")
        if not isinstance(self.preprocessing, Preprocessing):
            raise ConfigError(
                "ScanConfig.preprocessing must be a Preprocessing, e.g. Preprocessing(mode='mnist'), got "
                f"{self.preprocessing!r}."
            )
        if self.matmul_precision not in ("default", "high", "highest"):
            raise ConfigError(
                f"ScanConfig.matmul_precision must be 'default', 'high' or 'highest', got {self.matmul_precision!r}."
            )
        for name in ("label_chunk", "steps_per_dispatch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"ScanConfig.{name} must be a positive int or None, got {value!r}.")

    @property
    def steps_per_epoch(self) -> int:
        return self.nb_sample // self.batch_size

    @property
    def stop_patience(self) -> int:
        return self.early_stop_patience if self.early_stop_patience is not None else 5 * self.patience

    def replace(self, **changes) -> "ScanConfig":
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def paper(cls, **changes) -> "ScanConfig":
        """The reference's settings: 31-step epochs, up to 1000 epochs, patience 5."""
        return cls(**changes)

    @classmethod
    def fast(cls, **changes) -> "ScanConfig":
        """For CPUs: the reference's schedule on 5-step epochs, patience 3, at most 30 epochs (150 steps
        per label), cost starting at init_cost. See README for what it was measured to find."""
        settings = dict(nb_sample=5 * 32, max_epochs=30, patience=3, cost_starts_at_zero=False)
        settings.update(changes)
        return cls(**settings)
