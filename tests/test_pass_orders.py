"""The batch orders made once per pass give every step the batch draw_batch gives it."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ncjax.scan.pass_orders import KEPT, PassOrders, passes_spanned
from ncjax.search.step import batch_of_pass, draw_batch


@pytest.mark.parametrize("per_pass", [1, 2, 5, 248])
def test_passes_spanned_is_the_most_passes_any_window_reaches(per_pass):
    for steps in (1, 2, 5, 31, 300):
        most = max(len({s // per_pass for s in range(start, start + steps)}) for start in range(2 * per_pass))
        assert passes_spanned(steps, per_pass) == most


def _orders(num_images: int, batch: int) -> PassOrders:
    sharding = NamedSharding(Mesh(np.asarray(jax.devices()[:1]), ("labels",)), PartitionSpec("labels"))
    return PassOrders(num_images, batch, sharding)


@pytest.mark.parametrize(("num_images", "batch", "first_step", "steps"), [(40, 8, 3, 1), (40, 8, 3, 4), (40, 8, 4, 1),
                                                                         (20, 8, 5, 6), (7, 8, 2, 3)])
def test_every_step_of_a_call_gets_draw_batchs_batch(num_images, batch, first_step, steps):
    key = jax.random.key(7)
    made = _orders(num_images, batch)
    orders = made.orders(key, first_step, steps)
    assert orders.shape == (passes_spanned(steps, made.per_pass), num_images)
    for step in range(first_step, first_step + steps):
        order = orders[step // made.per_pass - first_step // made.per_pass]
        got = batch_of_pass(order, jnp.int32(step), made.per_pass, min(batch, num_images))
        np.testing.assert_array_equal(got, draw_batch(key, jnp.int32(step), num_images, min(batch, num_images)))


def test_a_pass_is_made_once_and_another_key_starts_afresh():
    made = _orders(40, 8)
    key = jax.random.key(1)
    first = made.orders(key, 0, 1)
    assert all(made.orders(key, step, 1) is first for step in range(1, 5))  # the 5 steps of pass 0
    assert made.orders(key, 5, 1) is not first
    other = made.orders(jax.random.key(2), 0, 1)
    assert not np.array_equal(other, first)
    for step in range(0, 5 * (KEPT + 2), 5):
        made.orders(key, step, 1)
    assert made.kept == KEPT
