"""ScanConfig: every setting of a scan, validated when built; the defaults are the reference's.

Each field carries its help text (shown by `python -m ncjax.run --help`, which is generated from these fields).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ncjax.core.checks import check_flag, check_number, check_whole
from ncjax.core.choices import check_literal_fields
from ncjax.data.preprocess import Preprocessing
from ncjax.errors import ConfigError
from ncjax.search.losses import LossName

Regularization = Literal["l1", "l2"]
SearchKind = Literal["trigger", "margin"]
MatmulPrecision = Literal["default", "high", "highest"]


def setting(default: Any = dataclasses.MISSING, *, help: str, **kwargs) -> Any:
    """A dataclass field with its help text."""
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    """Neural Cleanse settings. Defaults are the reference's (gtsrb_visualize_example.py, visualizer.py).

    One epoch is `nb_sample // batch_size` optimizer steps (31 by default); the cost schedule, best-mask
    tracking and early stopping act at the end of each epoch, per label.
    """

    search: SearchKind = setting(
        "trigger", help="what each search optimizes: trigger (Neural Cleanse: the smallest mask and pattern that sends "
                        "clean images to the label) or margin (MM-BD: an input that maximizes the label's logit margin "
                        "over the others, max_epochs epochs from a random image; it reads the Adam and epoch settings, "
                        "restarts and preprocessing, and none of the cost, mask or threshold settings)")
    batch_size: int = setting(32, help="clean images per optimizer step")
    nb_sample: int = setting(1000, help="sets the epoch length: nb_sample // batch_size steps per epoch")
    max_epochs: int = setting(1000, help="epochs at most per label (the reference's 'steps')")
    learning_rate: float = setting(0.1, help="Adam's learning rate")
    beta_1: float = setting(0.5, help="Adam's first-moment decay, in [0, 1)")
    beta_2: float = setting(0.9, help="Adam's second-moment decay, in [0, 1)")
    adam_epsilon: float = setting(1e-7, help="Adam's epsilon (Keras' default 1e-7)")
    init_cost: float = setting(1e-3, help="the cost of the mask-size term once the schedule sets it")
    cost_starts_at_zero: bool = setting(True, help="start the cost at 0 until 'patience' successful epochs, as "
                                                   "the reference does (off: start at init_cost)")
    patience: int = setting(5, help="epochs in a row of success (or failure) before the cost goes up (or down)")
    cost_multiplier: float = setting(2.0, help="the cost goes up by this and down by this ** 1.5; > 1")
    early_stop: bool = setting(True, help="stop a label once its best mask stops shrinking")
    early_stop_threshold: float = setting(1.0, help="an epoch counts as no progress when the best regularizer "
                                                    "is at least this times the earlier best")
    early_stop_patience: int | None = setting(None, help="epochs without progress before stopping "
                                                         "(default: 5 x patience, as the reference)")
    attack_success_threshold: float = setting(0.99, help="share of stamped images sent to the label for a "
                                                         "trigger to count, in (0, 1]")
    regularization: Regularization = setting("l1", help="the mask-size term: l1 (the paper's) or l2")
    upsample: int = setting(1, help="mask super-pixel size in pixels")
    restarts: int = setting(1, help="independent searches per label, each from its own random trigger; the "
                                    "smallest that reaches the threshold is kept")
    warmup_epochs: int | None = setting(
        None, help="focus the search: after this many epochs only the labels with the smallest triggers so far "
                   "(candidates) and a few at the median (anchors, which measure how much longer searching shrinks a "
                   "typical trigger) keep searching, up to max_epochs; the other labels are frozen with their best "
                   "trigger so far (default: off, every label runs the whole schedule)")
    candidates: int = setting(3, help="with warmup_epochs: the labels that keep searching because their triggers are "
                                      "the smallest after the warm-up")
    anchors: int = setting(2, help="with warmup_epochs: labels at the warm-up's median that keep searching (from their "
                                   "best start only), so frozen labels' norms can be scaled to what the whole budget "
                                   "would give them (0: unscaled)")
    check_epochs: int | None = setting(None, help="epochs at most of each search in the verdict's source check "
                                                  "(default: max_epochs)")
    pair_epochs: int | None = setting(None, help="epochs at most of each search of the (source, target) pair scan "
                                                 "(default: max_epochs)")
    preprocessing: Preprocessing = setting(default_factory=Preprocessing,
                                           help="how model inputs relate to raw 0..255 pixels")
    loss: LossName = setting("reference", help="attack loss: reference (what the reference code computes, "
                                               "~16.1 (1 - p_target)) or crossentropy (-log p_target)")
    # Execution (results do not depend on these beyond float rounding):
    matmul_precision: MatmulPrecision = setting(
        "highest", help="highest: full float32 matmuls and convolutions, as the reference computed; default lets "
                        "GPUs use TF32 and TPUs bfloat16 (faster, coarser); CPUs compute float32 either way")
    deterministic: bool = setting(
        False, help="on GPUs, compile with XLA's deterministic algorithms only (xla_gpu_deterministic_ops), so the "
                    "same key gives the same result run to run; without it two float32 scans on one H100 differed "
                    "by 3.5 percent in their norms (same verdict); its speed cost is not measured yet. CPUs are "
                    "deterministic either way")
    label_chunk: int | None = setting(None, help="trigger searches optimized together (default: all that fit "
                                                 "the backend's memory budget)")
    steps_per_dispatch: int | None = setting(None, help="optimizer steps per compiled call (default: 1 on CPUs, "
                                                        "a whole epoch on accelerators)")
    min_lane_width: int | None = setting(None, help="as searches finish, the slot axis is compacted to powers of two "
                                                    "but not below this many lanes: fewer widths to compile, finished "
                                                    "lanes still computed (frozen) below it (default: down to one)")
    precompile_widths: bool | None = setting(
        None, help="compile the narrower widths the compaction may visit in background threads while the first "
                   "runs, so the scan does not wait for them (default: on accelerators; off on CPUs, where "
                   "compiling takes the cores the steps run on)")

    def __post_init__(self) -> None:
        check_literal_fields(self)
        for name in ("batch_size", "nb_sample", "max_epochs", "patience", "upsample", "restarts"):
            check_whole(self, name)
        if self.nb_sample < self.batch_size:
            raise ConfigError(
                f"ScanConfig.nb_sample ({self.nb_sample}) must be at least batch_size ({self.batch_size}): "
                "an epoch is nb_sample // batch_size steps."
            )
        for name in ("learning_rate", "init_cost", "adam_epsilon", "early_stop_threshold"):
            check_number(self, name, low=0, low_open=True)
        for name in ("beta_1", "beta_2"):
            check_number(self, name, low=0, high=1, high_open=True)
        check_number(self, "cost_multiplier", low=1, low_open=True)
        check_number(self, "attack_success_threshold", low=0, high=1, low_open=True)
        for name in ("cost_starts_at_zero", "early_stop", "deterministic"):
            check_flag(self, name)
        check_flag(self, "precompile_widths", optional=True)
        if not isinstance(self.preprocessing, Preprocessing):
            raise ConfigError(
                "ScanConfig.preprocessing must be a Preprocessing, e.g. Preprocessing(mode='mnist'), got "
                f"{self.preprocessing!r}."
            )
        for name in ("early_stop_patience", "label_chunk", "steps_per_dispatch", "min_lane_width", "warmup_epochs",
                     "check_epochs", "pair_epochs"):
            check_whole(self, name, optional=True)
        check_whole(self, "candidates")
        check_whole(self, "anchors", low=0)
        if self.search == "margin" and self.warmup_epochs is not None:
            raise ConfigError("ScanConfig.warmup_epochs focuses trigger searches; the margin search runs every label's "
                              "whole schedule: set warmup_epochs=None (ScanConfig.margin() does).")
        if self.warmup_epochs is not None and self.warmup_epochs >= self.max_epochs:
            raise ConfigError(
                f"ScanConfig.warmup_epochs ({self.warmup_epochs}) must be below max_epochs ({self.max_epochs}): the "
                "candidates search on after the warm-up; set warmup_epochs=None to give every label the whole schedule."
            )

    @property
    def steps_per_epoch(self) -> int:
        return self.nb_sample // self.batch_size

    @property
    def stop_patience(self) -> int:
        return self.early_stop_patience if self.early_stop_patience is not None else 5 * self.patience

    def replace(self, **changes) -> ScanConfig:
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def paper(cls, **changes) -> ScanConfig:
        """The reference's settings: 31-step epochs, up to 1000 epochs, patience 5."""
        return cls(**changes)

    @classmethod
    def for_device(cls, **changes) -> ScanConfig:
        """The preset for this process's default device (device_preset()), with `changes`."""
        return getattr(cls, device_preset())(**changes)

    def source_check(self) -> ScanConfig:
        """The settings of the source-specific check's searches: one start each, check_epochs at most, no focus
        (its searches are (source, label) pairs, not labels to rank)."""
        return self.replace(restarts=1, warmup_epochs=None, max_epochs=self.check_epochs or self.max_epochs,
                            check_epochs=None)

    def pair_search(self) -> ScanConfig:
        """The settings of the (source, target) pair scan's searches: one start each, pair_epochs at most, no
        focus (every pair is read, none is ranked out)."""
        return self.replace(restarts=1, warmup_epochs=None, max_epochs=self.pair_epochs or self.max_epochs,
                            check_epochs=None, pair_epochs=None)

    def margin_search(self) -> ScanConfig:
        """The settings of the verdict's maximum-margin search: ScanConfig.margin() with this config's
        preprocessing and execution settings."""
        execution = ("preprocessing", "matmul_precision", "deterministic", "steps_per_dispatch", "min_lane_width",
                     "precompile_widths")
        return ScanConfig.margin(**{name: getattr(self, name) for name in execution})

    @classmethod
    def fast(cls, **changes) -> ScanConfig:
        """For CPUs: the reference's schedule on 5-step epochs, patience 3, at most 30 epochs (150 steps
        per label), cost starting at init_cost. See docs/detection-quality.md for what it was measured to find."""
        settings: dict[str, Any] = dict(nb_sample=5 * 32, max_epochs=30, patience=3, cost_starts_at_zero=False)
        settings.update(changes)
        return cls(**settings)

    @classmethod
    def margin(cls, **changes) -> ScanConfig:
        """The maximum-margin search (MM-BD): 4 random starts per label, 30 epochs of 5 steps at learning rate 0.05
        (150 Adam steps each); see experiments/attack_benchmark.md for what it was measured to find."""
        settings: dict[str, Any] = dict(search="margin", nb_sample=5 * 32, max_epochs=30, restarts=4,
                                        learning_rate=0.05, beta_1=0.9, beta_2=0.999)
        settings.update(changes)
        return cls(**settings)

    @classmethod
    def focused(cls, **changes) -> ScanConfig:
        """For CPUs, the fast preset's epochs spent where they matter: every label warms up for 10 epochs from 2
        starts; then the 3 labels with the smallest triggers search on from both starts for up to 120 epochs, 4x
        the fast preset's, with 2 anchors at the median from one start each (8 lanes), and the rest are frozen.
        The source check runs the fast preset's 30 epochs, the pair scan 45. A max_epochs of 10 or less (without
        warmup_epochs) leaves nothing to focus on: every label then runs that schedule. See docs/detection-quality.md
        for what it was measured to find."""
        settings: dict[str, Any] = dict(max_epochs=120, restarts=2, warmup_epochs=10, candidates=3, anchors=2,
                                        check_epochs=30, pair_epochs=45)
        settings.update(changes)
        if "warmup_epochs" not in changes and settings["max_epochs"] <= settings["warmup_epochs"]:
            settings["warmup_epochs"] = None  # a schedule no longer than the warm-up leaves nothing to focus on
        return cls.fast(**settings)


Preset = Literal["paper", "fast", "focused"]
PRESETS: tuple[str, ...] = typing.get_args(Preset)


def device_preset() -> Preset:
    """focused on CPUs (the fast preset's budget spent on the likeliest targets; measured to find more in about
    the time of the fast preset and its source check, docs/detection-quality.md), paper on accelerators: the
    default of every command and of the audit."""
    import jax

    return "focused" if jax.default_backend() == "cpu" else "paper"
