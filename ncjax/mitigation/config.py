"""MitigationConfig: the settings of the paper's three defenses, validated when built.

Defaults and where they come from (Wang et al. 2019, Section VI; the reference code ships no mitigation):
- unlearn: one epoch (the paper's), 20 % of the training images stamped with a reversed trigger and kept at
  their true labels (the paper's; BackdoorBench's too); Adam starting at 1e-3, the reference's training rate
  (its injection code trains with Adam(1e-3)), decaying to 0 along a cosine over the steps. Measured on the real
  GTSRB models (experiments/README.md): a constant 1e-4 removed the reversed trigger but left the true one at
  72 % attack success; a constant 1e-3 removed both but cost the clean twin up to 1.3 points of accuracy on
  some seeds; the decay removes both and keeps accuracy within 0.2 points on seeds 0-2. The paper's
  epoch is 10 % of GTSRB's training set, about 110 steps of 32; a smaller image set is passed over again until
  at least 100 steps are done.
- prune: the paper prunes the second-to-last layer's neurons, most trigger-active first, until the reversed
  trigger stops working; here in steps of 5 % of the layer, stopping at 5 % attack success or before clean
  accuracy falls 5 points.
- filter: the paper scores an input by the mean activation of the top 1 % trigger-active neurons, thresholded
  at a 5 % false-positive rate on clean images.
The paper fine-tunes on 10 % of the training set; an auditor has only the clean images given, so by default
half of them train (or rank, or calibrate) and the other half, never seen by the defense, measure it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ncjax.core.checks import check_number, check_whole
from ncjax.core.choices import check_literal_fields
from ncjax.search.config import setting

Method = Literal["unlearn", "prune", "filter"]


@dataclass(frozen=True, kw_only=True)
class MitigationConfig:
    """Settings of ncjax.mitigate; each method reads its own and the shared ones."""

    method: Method = setting("unlearn", help="unlearn: fine-tune on images stamped with the reversed triggers at "
                                             "their true labels; prune: zero the neurons the triggers excite; "
                                             "filter: flag inputs that excite them")
    holdout_share: float = setting(0.5, help="share of the images (per class) held apart to measure the result, "
                                             "never trained on, ranked on or calibrated on; in (0, 1)")
    stamped_share: float = setting(0.2, help="unlearn: share of training images stamped with a reversed trigger, "
                                             "true labels kept (the paper's 20 %%)")
    epochs: int = setting(1, help="unlearn: passes over the training images (the paper's 1)")
    min_steps: int = setting(100, help="unlearn: at least this many steps: a small image set is passed over again, "
                                       "with new stamps, until they are done")
    learning_rate: float = setting(1e-3, help="unlearn: Adam's starting rate (the reference's training rate), "
                                                 "decaying to 0 along a cosine over the steps")
    batch_size: int = setting(32, help="unlearn: images per step")
    prune_step: float = setting(0.05, help="prune: share of the layer's neurons pruned per step, in (0, 1]")
    target_attack_success: float = setting(0.05, help="prune: stop once every trigger's attack success is at most "
                                                      "this")
    max_accuracy_drop: float = setting(0.05, help="prune: never go past a step that costs more clean accuracy than "
                                                  "this (0.05 = 5 points)")
    filter_neurons: float = setting(0.01, help="filter: share of the layer's neurons whose activation scores an "
                                               "input (the paper's top 1 %%; at least one neuron)")
    false_positive_rate: float = setting(0.05, help="filter: share of clean images flagged; sets the threshold")

    def __post_init__(self) -> None:
        check_literal_fields(self)
        for name in ("epochs", "batch_size", "min_steps"):
            check_whole(self, name)
        for name in ("holdout_share", "false_positive_rate"):
            check_number(self, name, low=0, high=1, low_open=True, high_open=True)
        for name in ("stamped_share", "prune_step", "filter_neurons"):
            check_number(self, name, low=0, high=1, low_open=True)
        for name in ("target_attack_success", "max_accuracy_drop"):
            check_number(self, name, low=0, high=1)
        check_number(self, "learning_rate", low=0, low_open=True)
