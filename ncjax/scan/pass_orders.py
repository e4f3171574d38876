"""The orders the shared batches are drawn in, computed once per pass over the images rather than once per step.

A pass's order is a seeded permutation of every clean image (ncjax.search.step.pass_order): sorting thousands of
keys costs the CPU about 4 ms, as much as a seventh of one label's optimizer step, while a pass lasts N / batch
steps. The compiled step takes the orders of the passes its call may reach, made here and kept on the device;
the batches, and so every result, are the ones draw_batch gives.
"""
from __future__ import annotations

from collections import OrderedDict

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from ncjax.search.step import pass_order, steps_per_pass

KEPT = 4  # stacks of orders kept: a call per step reuses one for a whole pass


def passes_spanned(steps: int, per_pass: int) -> int:
    """The most passes that `steps` consecutive steps can reach, wherever they start."""
    return (steps + per_pass - 2) // per_pass + 1


class PassOrders:
    """orders(data_key, first_step, n): (passes_spanned(n), N) int32, the orders of passes first_step // per_pass
    onward, replicated over the scan's devices; cached for the last few calls' passes."""

    def __init__(self, num_images: int, batch_size: int, sharding: NamedSharding):
        self.per_pass = steps_per_pass(num_images, batch_size)
        self._replicated = NamedSharding(sharding.mesh, PartitionSpec())
        self._make = jax.jit(lambda key, first, count: jnp.stack([pass_order(key, first + i, num_images)
                                                                  for i in range(count)]),
                             static_argnames="count")
        self._kept: OrderedDict[tuple, jax.Array] = OrderedDict()
        self._key: jax.Array | None = None

    @property
    def kept(self) -> int:
        """Stacks of orders held on the device now."""
        return len(self._kept)

    def orders(self, data_key: jax.Array, first_step: int, steps: int) -> jax.Array:
        if self._key is not data_key:  # another scan's key: nothing kept applies
            self._kept.clear()
            self._key = data_key
        first, count = first_step // self.per_pass, passes_spanned(steps, self.per_pass)
        if (first, count) not in self._kept:
            made = self._make(data_key, jnp.asarray(first, jnp.int32), count=count)
            self._kept[(first, count)] = jax.device_put(made, self._replicated)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return self._kept[(first, count)]
