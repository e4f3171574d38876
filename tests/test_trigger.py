"""The trigger parametrization and blend."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.search.trigger import TANH_EPSILON, init_trigger, mask_shape, stamp, trigger_mask, trigger_pattern


def test_init_ranges_and_round_trip():
    trig = init_trigger(jax.random.key(0), (5, 7, 3), upsample=1)
    mask, pattern = trigger_mask(trig, (5, 7, 3), 1), trigger_pattern(trig)
    assert mask.shape == (5, 7) and pattern.shape == (5, 7, 3)
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1 and float(pattern.max()) <= 255
    assert bool(jnp.all(jnp.isfinite(trig.mask_tanh))) and bool(jnp.all(jnp.isfinite(trig.pattern_tanh)))
    # tanh(arctanh((v - 0.5)(2 - eps))) / (2 - eps) + 0.5 == v
    u = jax.random.uniform(jax.random.split(jax.random.key(0))[0], (5, 7, 1))
    np.testing.assert_allclose(mask, u[..., 0], atol=1e-6)


def test_epsilon_keeps_the_extremes_finite():
    """A uniform draw of exactly 0 (or a mask of 1) maps to a finite tanh parameter, and back."""
    v = jnp.asarray([0.0, 1.0])
    t = jnp.arctanh((v - 0.5) * (2 - TANH_EPSILON))
    assert bool(jnp.all(jnp.isfinite(t)))
    np.testing.assert_allclose(jnp.tanh(t) / (2 - TANH_EPSILON) + 0.5, v, atol=1e-6)
    assert not bool(jnp.all(jnp.isfinite(jnp.arctanh((v - 0.5) * 2))))  # without it: infinite


def test_upsampled_mask_is_cropped_super_pixels():
    assert mask_shape((5, 7, 3), 2) == (3, 4, 1)
    trig = init_trigger(jax.random.key(1), (5, 7, 3), upsample=2)
    mask = trigger_mask(trig, (5, 7, 3), 2)
    assert mask.shape == (5, 7)
    super_pixels = jnp.tanh(trig.mask_tanh[..., 0]) / (2 - TANH_EPSILON) + 0.5  # (3, 4)
    np.testing.assert_array_equal(mask[0, 0], mask[1, 1])
    np.testing.assert_array_equal(mask[4, 6], super_pixels[2, 3])  # the last, cropped super-pixel
    np.testing.assert_array_equal(mask[4, 5], super_pixels[2, 2])
    assert float(mask[0, 0]) != float(mask[0, 2])


def test_stamp_blends_in_raw_pixels():
    x = jnp.full((1, 2, 2, 3), 100.0)
    mask = jnp.array([[0.0, 1.0], [0.5, 0.25]])
    pattern = jnp.full((2, 2, 3), 200.0)
    out = stamp(x, mask, pattern)[0, ..., 0]
    np.testing.assert_allclose(out, [[100.0, 200.0], [150.0, 125.0]])
