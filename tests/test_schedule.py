"""The end-of-epoch schedule, driven by hand-made epoch statistics."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ncjax import ScanConfig
from ncjax.search.schedule import EpochStats, end_epoch, init_schedule

SHAPE = (2, 2, 1)


def _run(config, asrs, regs):
    state = init_schedule(config, SHAPE)
    history = []
    for e, (asr, reg) in enumerate(zip(asrs, regs)):
        stats = EpochStats(*(jnp.float32(v) for v in (0.0, reg, 0.0, asr)))
        state = end_epoch(state, stats, jnp.full(SHAPE[:2], float(e)), jnp.zeros(SHAPE), config)
        history.append(state)
    return history


def test_cost_set_after_patience_successes_then_doubles():
    config = ScanConfig(patience=2, max_epochs=10)
    h = _run(config, [1.0] * 6, [5.0] * 6)
    # Epoch 2 sets the cost (counter reset, then this success counts as 1 up); every 2nd success doubles it.
    np.testing.assert_allclose([float(s.cost) for s in h], [0, 1e-3, 2e-3, 2e-3, 4e-3, 4e-3], rtol=1e-6)


def test_cost_goes_down_by_multiplier_to_the_1_5():
    config = ScanConfig(patience=2, max_epochs=10, cost_starts_at_zero=False)
    h = _run(config, [0.0] * 4, [5.0] * 4)
    np.testing.assert_allclose(float(h[1].cost), 1e-3 / 2**1.5, rtol=1e-6)
    assert bool(h[1].cost_down_flag) and not bool(h[1].cost_up_flag)


def test_best_kept_only_when_successful_and_smaller():
    config = ScanConfig(patience=5, max_epochs=10)
    h = _run(config, [1.0, 0.5, 1.0, 1.0], [9.0, 1.0, 4.0, 6.0])
    assert [float(s.reg_best) for s in h] == [9.0, 9.0, 4.0, 4.0]
    assert float(h[-1].best_mask[0, 0]) == 2.0  # the trigger as it stood after epoch 2


def test_max_epochs_ends_and_freezes():
    config = ScanConfig(patience=5, max_epochs=3)
    h = _run(config, [0.0] * 5, [1.0] * 5)
    assert [bool(s.done) for s in h] == [False, False, True, True, True]
    assert int(h[-1].epochs) == 3 and not bool(h[-1].early_stopped)


def test_early_stop_needs_up_and_down_and_stall():
    config = ScanConfig(patience=1, max_epochs=50, early_stop_patience=2, cost_starts_at_zero=False)
    # success (cost up), failure (cost down, 1 stalled epoch), success without a smaller regularizer
    # (2 stalled epochs): stops there, before touching the cost, as the reference breaks.
    h = _run(config, [1.0, 0.0, 1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    stopped = [bool(s.early_stopped) for s in h]
    assert stopped.index(True) == 2 and int(h[2].epochs) == 3 and int(h[-1].epochs) == 3
    assert float(h[2].cost) == float(h[1].cost)
    # Without the down step, it never stops.
    never = _run(config, [1.0] * 6, [3.0] * 6)
    assert not any(bool(s.early_stopped) for s in never)
