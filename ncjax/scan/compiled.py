"""The scan's two compiled functions, built once per slot-axis width and cached: `steps` (n optimizer steps of
every lane) and `end` (close the epoch and summarize it for the host).

Lanes that draw from all clean images share each step's batch: it is gathered once and broadcast over the
slot axis, in the order of its pass over the images (made once per pass: ncjax.scan.pass_orders). When some
slot draws from a pool of its own (a source class), every lane gathers its own batch from the padded pool table
instead; a pool of all images draws the same batches either way.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding

from ncjax.scan.ahead import Ahead, abstract
from ncjax.scan.pass_orders import PassOrders
from ncjax.search.config import ScanConfig
from ncjax.search.kinds import SearchState, search_functions
from ncjax.search.step import EpochSummary, batch_of_pass, draw_pool_batch


class Pools(NamedTuple):
    """The image pools on the device (see ncjax.scan.slots.SlotTable)."""

    table: jax.Array  # (P, N) int32 image indices, padded
    sizes: jax.Array  # (P,) int32


class CompiledSteps:
    """The step and epoch-end functions of one scan, compiled once per (function, width, steps per call)."""

    def __init__(self, apply: Callable, config: ScanConfig, image_shape: tuple[int, int, int], num_images: int,
                 sharding: NamedSharding, *, per_slot_batches: bool = False):
        self.traces: dict[str, int] = {"steps": 0, "end": 0}  # Python runs the bodies only while tracing
        self.compile_time_s = 0.0  # seconds the caller waited for the compiler
        self._cache: dict[tuple, Any] = {}
        self._ahead = Ahead()
        self._unchecked: set[tuple] = set()  # built ahead, not yet called
        self.built_in_place = 0  # executables the caller waited to compile (not built ahead)
        self._precision = config.matmul_precision
        # XLA's debug option, per executable (it also keys the persistent compile cache); XLA:CPU ignores it.
        self._options = {"xla_gpu_deterministic_ops": True} if config.deterministic else None
        batch = config.batch_size
        # Where each lane draws from its own pool, the step makes its own orders; it takes a placeholder.
        self._no_orders = jnp.zeros((1, 1), jnp.int32) if per_slot_batches else None
        self._orders = PassOrders(num_images, batch, sharding)
        per_pass = self._orders.per_pass
        search = search_functions(config.search)

        def shared_batch(states: SearchState, images, data_key, pools: Pools, orders, first_step, step):  # (B, H, W, C)
            order = orders[step // per_pass - first_step // per_pass]
            return images[batch_of_pass(order, step, per_pass, batch)]

        def own_batches(states: SearchState, images, data_key, pools: Pools, orders, first_step, step):
            draw = jax.vmap(draw_pool_batch, in_axes=(None, None, 0, 0, None))  # (lanes, B, H, W, C)
            return images[draw(data_key, step, pools.table[states.pool], pools.sizes[states.pool], batch)]

        batches, batch_axis = (own_batches, 0) if per_slot_batches else (shared_batch, None)

        def steps(states: SearchState, images, params, data_key, pools: Pools, orders, first_step,
                  n: int) -> SearchState:
            self.traces["steps"] += 1

            def one(carry, step):
                raw = batches(carry, images, data_key, pools, orders, first_step, step)
                step_all = jax.vmap(search.step, in_axes=(0, batch_axis, None, None, None, None))
                return step_all(carry, raw, params, apply, config, image_shape), None

            if n == 1:
                states = one(states, first_step)[0]
            else:
                states = jax.lax.scan(one, states, first_step + jnp.arange(n))[0]
            # Keep the slot axis sharded across calls, so every call sees the layout it was compiled for.
            return jax.lax.with_sharding_constraint(states, sharding)

        def end(states: SearchState) -> tuple[SearchState, EpochSummary]:
            self.traces["end"] += 1
            new = jax.vmap(search.end_epoch, in_axes=(0, None, None))(states, config, image_shape)
            new = jax.lax.with_sharding_constraint(new, sharding)
            return new, search.summary(states, new, config)

        self._steps = jax.jit(steps, static_argnames="n", donate_argnums=0)
        self._end = jax.jit(end, donate_argnums=0)

    def _get(self, key: tuple, fn, args, static: dict) -> Any:
        if key not in self._cache:
            start = time.perf_counter()
            self._cache[key] = self._built_ahead(key) or self._build_in_place(fn, args, static)
            self.compile_time_s += time.perf_counter() - start
        return self._cache[key]

    def _build_in_place(self, fn, args, static: dict) -> Any:
        self.built_in_place += 1
        return self._build(fn, args, static)

    def _build(self, fn, args, static: dict) -> Any:
        with jax.default_matmul_precision(self._precision):  # fixed when traced; thread-local, so set here
            return fn.lower(*args, **static).compile(self._options)

    def _built_ahead(self, key: tuple) -> Any:
        if not self._ahead.pending(key):
            return None
        try:
            executable = self._ahead.take(key)
        except Exception as e:  # the scan goes on: it compiles this width itself, as without compiling ahead
            warnings.warn(f"compiling {key[0]} at width {key[1]} ahead failed ({type(e).__name__}: {e}); "
                          "compiling it now", RuntimeWarning, stacklevel=4)
            return None
        self._unchecked.add(key)
        return executable

    def _call(self, name: str, fn, args, static: dict) -> Any:
        key = self.cache_key(name, args[0].target.shape[0], **static)
        executable = self._get(key, fn, args, static)
        if key not in self._unchecked:
            return executable(*args)
        self._unchecked.discard(key)
        try:  # the arguments are checked against the executable before anything runs or is donated
            return executable(*args)
        except (TypeError, ValueError) as e:
            warnings.warn(f"{name} compiled ahead at width {key[1]} does not take this scan's arguments ({e}); "
                          "compiling it now", RuntimeWarning, stacklevel=3)
            start = time.perf_counter()
            self._cache[key] = self._build_in_place(fn, args, static)
            self.compile_time_s += time.perf_counter() - start
            return self._cache[key](*args)

    def precompile(self, states: SearchState, images, params, data_key, pools: Pools, widths: Sequence[int],
                   steps_per_call: Sequence[int]) -> None:
        """Start building the steps (each count in `steps_per_call`) and the epoch end at each of `widths` in
        background threads; `steps` and `end` at those widths then wait for these builds instead of compiling."""
        shared = abstract((images, params, data_key, pools))
        for width in widths:
            lanes = abstract(states, width=width)
            for n in sorted(set(steps_per_call)):
                late = abstract((self._orders_for(data_key, 0, n), jnp.asarray(0, jnp.int32)))
                self._ahead_build("steps", width, self._steps, (lanes, *shared, *late), {"n": n})
            self._ahead_build("end", width, self._end, (lanes,), {})

    def _ahead_build(self, name: str, width: int, fn, args, static: dict) -> None:
        key = self.cache_key(name, width, **static)
        if key not in self._cache:
            self._ahead.submit(key, lambda: self._build(fn, args, static))

    @property
    def background_compile_s(self) -> float:
        """Compile seconds spent in background threads (compiling ahead), beside the scan."""
        return self._ahead.seconds

    def close(self) -> None:
        """Stop compiling ahead: builds not started are dropped."""
        self._ahead.close()

    @staticmethod
    def cache_key(name: str, width: int, **static) -> tuple:
        return (name, width, tuple(sorted(static.items())))

    def steps(self, states: SearchState, images, params, data_key, pools: Pools, first_step: int,
              n: int) -> SearchState:
        """`n` optimizer steps of every lane, starting at global step `first_step`."""
        orders = self._orders_for(data_key, first_step, n)
        args = (states, images, params, data_key, pools, orders, jnp.asarray(first_step, jnp.int32))
        return self._call("steps", self._steps, args, {"n": n})

    def _orders_for(self, data_key, first_step: int, n: int) -> jax.Array:
        """The batch orders a call of `n` steps from `first_step` reads."""
        if self._no_orders is not None:
            return self._no_orders
        return self._orders.orders(data_key, first_step, n)

    def end(self, states: SearchState) -> tuple[SearchState, EpochSummary]:
        """Close the epoch of every lane."""
        return self._call("end", self._end, (states,), {})

    def executable(self, name: str, width: int, **static) -> Any:
        """The compiled executable of `name` ("steps" or "end") at `width` lanes, for cost and memory analysis."""
        return self._cache[self.cache_key(name, width, **static)]

    @property
    def compile_count(self) -> int:
        """Executables built so far (compiled, or loaded from the persistent compile cache)."""
        return len(self._cache)

    @property
    def widths(self) -> set[int]:
        """The slot-axis widths compiled so far."""
        return {key[1] for key in self._cache}

    def texts(self) -> list[str]:
        """The compiled executables' HLO text."""
        return [executable.as_text() for executable in self._cache.values()]
