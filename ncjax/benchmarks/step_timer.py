"""StepTimer: the scan's compiled step at chosen widths, each on its own states, timed call by call (for the
benchmark: what a step costs, apart from a scan's schedule)."""
from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.models.classifier import Classifier
from ncjax.scan.compiled import CompiledSteps, Pools
from ncjax.search.config import ScanConfig
from ncjax.search.step import init_slot


def fresh_states(width: int, labels: np.ndarray, config: ScanConfig, shape) -> Any:
    """`width` lanes' initial states, targeting `labels`, all drawing from every image."""
    keys = jax.random.split(jax.random.key(0), width)
    pools = jnp.zeros(width, jnp.int32)
    return jax.vmap(init_slot, in_axes=(0, 0, 0, None, None))(keys, jnp.asarray(labels[:width] % 1_000_000), pools,
                                                             config, shape)


class StepTimer:
    """One compiled step per (width, steps per call), each width called on its own states; seconds per call."""

    def __init__(self, model: Classifier, images: jax.Array, config: ScanConfig):
        self.model, self.images, self.config = model, images, config
        sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("labels",)),
                                              jax.sharding.PartitionSpec("labels"))
        self.compiled = CompiledSteps(model.apply, config, model.input_shape, len(images), sharding)
        self.pools = Pools(table=jnp.arange(len(images), dtype=jnp.int32)[None], sizes=jnp.asarray([len(images)]))
        self.states: dict[int, Any] = {}
        self.key = jax.random.key(1)
        self.step = 0

    def compile(self, width: int, n: int = 1) -> float:
        """Build the step of `width` lanes running `n` steps per call (and call it once); compile seconds."""
        start = self.compiled.compile_time_s
        if width not in self.states:
            labels = np.arange(width) % self.model.num_classes
            self.states[width] = fresh_states(width, labels, self.config, self.model.input_shape)
        self.call(width, n)
        return self.compiled.compile_time_s - start

    def call(self, width: int, n: int = 1) -> float:
        """One call: `n` optimizer steps of `width` lanes; its seconds, waited for."""
        start = time.perf_counter()
        self.states[width] = self.compiled.steps(self.states[width], self.images, self.model.params, self.key,
                                                 self.pools, self.step, n)
        jax.block_until_ready(self.states[width])
        self.step += n
        return time.perf_counter() - start

    def executable(self, width: int, n: int = 1):
        return self.compiled.executable("steps", width, n=n)
