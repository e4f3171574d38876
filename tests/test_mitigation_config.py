"""MitigationConfig: validated when built; unknown methods and out-of-range shares are refused."""
from __future__ import annotations

import pytest

import ncjax


def test_defaults_are_the_documented_ones():
    config = ncjax.MitigationConfig()
    assert (config.method, config.stamped_share, config.epochs, config.learning_rate) == ("unlearn", 0.2, 1, 1e-3)
    assert (config.filter_neurons, config.false_positive_rate, config.holdout_share) == (0.01, 0.05, 0.5)


@pytest.mark.parametrize("changes, match", [
    (dict(method="retrain"), "method must be one of"),
    (dict(holdout_share=1.0), "holdout_share"),
    (dict(holdout_share=0.0), "holdout_share"),
    (dict(stamped_share=0.0), "stamped_share"),
    (dict(prune_step=1.5), "prune_step"),
    (dict(false_positive_rate=float("nan")), "false_positive_rate"),
    (dict(max_accuracy_drop=-0.1), "max_accuracy_drop"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=True), "batch_size"),
    (dict(min_steps=2.5), "min_steps"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=float("inf")), "learning_rate"),
])
def test_bad_settings_are_refused_with_the_field_named(changes, match):
    with pytest.raises(ncjax.ConfigError, match=match):
        ncjax.MitigationConfig(**changes)
