"""scan_all_labels: Neural Cleanse trigger reverse-engineering for many labels in one compiled step.

Labels run in chunks. Within a chunk every label's state has a leading label axis and all labels advance in
lockstep through the same batches; the step is `jax.vmap(label_step)` compiled once per chunk width. After
each epoch one small device->host read returns the epoch statistics and done flags. Labels that finish are
taken out and the chunk is compacted to the next power-of-two width, so finished labels stop costing
compute while the number of compiled widths stays small. With several devices the label axis is sharded
over a "labels" mesh axis.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ncjax.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from ncjax.config import ScanConfig
from ncjax.errors import ScanInputError
from ncjax.result import EpochLogs, ScanProgress, ScanResult
from ncjax.step import LabelState, draw_batch, init_label, label_end_epoch, label_step
from ncjax.trigger import Trigger, trigger_mask, trigger_pattern

logger = logging.getLogger(__name__)

# Label chunk: every label at once on every backend. Measured on the 2-core AVX2 CPU (GTSRB network, batch 32,
# YNNPACK fusion off; make bench, 5 interleaved rounds): one 43-wide vmap per call 33.7 label-steps/s against
# 30.2 for one label per call; earlier single runs gave 32.8 against 32.0, and whole fast-preset scans took 212 s
# in one chunk of 43 and 207.5 s in chunks of 1, so width costs nothing on a CPU and wins a little per step.
# Steps per dispatch: a lax.scan over steps made each step 4-8x slower on XLA:CPU, so CPUs dispatch one step per
# call; accelerators run a whole epoch per call.
CPU_STEPS_PER_DISPATCH = 1



# Memory bound on the label chunk, so large heads never run out of memory: activations kept for the backward
# pass are estimated per label (batch x the layers' output sizes x 4 bytes x 3) and a chunk stays within this.
CHUNK_MEMORY_BUDGET = {"cpu": 4 << 30}
DEFAULT_CHUNK_MEMORY_BUDGET = 16 << 30
CHUNK_WITHOUT_LAYER_SIZES = 64


def per_label_bytes(model: Any, batch_size: int) -> int | None:
    """Rough activation memory of one label's step, from the model's layer table (None if it has none)."""
    sizes = [int(np.prod([d for d in layer.output_shape[1:] if d])) for layer in getattr(model, "layers", ())
             if getattr(layer, "depth", 0) == 0]
    return batch_size * sum(sizes) * 4 * 3 if sizes else None


def default_label_chunk(platform: str, num_labels: int, label_bytes: int | None = None) -> int:
    """Every label at once when it fits the memory budget (the same rule on every backend measured)."""
    if label_bytes is None:
        return min(num_labels, CHUNK_WITHOUT_LAYER_SIZES)
    budget = CHUNK_MEMORY_BUDGET.get(platform, DEFAULT_CHUNK_MEMORY_BUDGET)
    return max(1, min(num_labels, budget // label_bytes))


def default_steps_per_dispatch(platform: str, config: ScanConfig) -> int:
    return CPU_STEPS_PER_DISPATCH if platform == "cpu" else config.steps_per_epoch


# ------------------------------------------------------------------------------------ input checks


def _check_model(model: Any) -> tuple[tuple[int, int, int], int]:
    for attr in ("apply", "params", "input_shape", "num_classes"):
        if not hasattr(model, attr):
            raise ScanInputError(
                f"model has no '{attr}': pass a Classifier from ncjax.load_model (or an object with apply, "
                "params, input_shape and num_classes)."
            )
    shape = tuple(model.input_shape)
    if len(shape) != 3:
        raise ScanInputError(f"model.input_shape must be (H, W, C), got {shape}.")
    return shape, int(model.num_classes)  # type: ignore[return-value]


def _check_images(images: Any, image_shape: tuple[int, int, int], config: ScanConfig) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim != 4 or tuple(array.shape[1:]) != image_shape:
        raise ScanInputError(
            f"images have shape {array.shape}; the model takes (N, {', '.join(map(str, image_shape))}). "
            "Resize them to the model's input first."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ScanInputError(f"images must be numeric, got dtype {array.dtype}.")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ScanInputError("images contain NaN or infinite values.")
    if len(array) < config.batch_size:
        raise ScanInputError(
            f"{len(array)} clean images are fewer than one batch ({config.batch_size}); give more images "
            "or a smaller ScanConfig.batch_size."
        )
    return array


def _check_labels(labels: Sequence[int] | None, num_classes: int) -> np.ndarray:
    if labels is None:
        return np.arange(num_classes)
    values = np.asarray(list(labels))
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ScanInputError(f"labels must be a non-empty list of ints, got {labels!r}.")
    bad = [int(v) for v in values if not 0 <= v < num_classes]
    if bad:
        raise ScanInputError(f"labels {bad} are out of range: the model has {num_classes} classes (0..{num_classes - 1}).")
    if len(set(values.tolist())) != len(values):
        raise ScanInputError(f"labels contain duplicates: {values.tolist()}.")
    return values.astype(np.int64)


def _check_key(key: Any) -> jax.Array:
    try:
        key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.shape == (2,) and key.dtype == jnp.uint32):
            return key
    except TypeError:
        pass
    raise ScanInputError("key must be a JAX PRNG key, e.g. jax.random.key(0).")


# -------------------------------------------------------------------------------------- compiled fns


class _Compiled:
    """The chunk's step and epoch-end functions, compiled once per (width, steps) and cached."""

    def __init__(self, apply: Callable, config: ScanConfig, image_shape, num_images: int, sharding: NamedSharding):
        self.traces: dict[str, int] = {"steps": 0, "end": 0}
        self.compile_time_s = 0.0
        self._cache: dict[tuple, Any] = {}
        self._precision = config.matmul_precision
        batch = config.batch_size

        def steps(states: LabelState, images, params, data_key, first_step, n: int) -> LabelState:
            self.traces["steps"] += 1  # Python runs this only while tracing

            def one(carry, step):
                raw_batch = images[draw_batch(data_key, step, num_images, batch)]
                step_all = jax.vmap(label_step, in_axes=(0, None, None, None, None, None))
                return step_all(carry, raw_batch, params, apply, config, image_shape), None

            if n == 1:
                states = one(states, first_step)[0]
            else:
                states = jax.lax.scan(one, states, first_step + jnp.arange(n))[0]
            # Keep the label axis sharded across calls, so every call sees the layout it was compiled for.
            return jax.lax.with_sharding_constraint(states, sharding)

        def end(states: LabelState):
            self.traces["end"] += 1
            cost = states.schedule.cost
            stats = jax.tree_util.tree_map(lambda s: s / config.steps_per_epoch, states.sums)
            new = jax.vmap(label_end_epoch, in_axes=(0, None, None))(states, config, image_shape)
            new = jax.lax.with_sharding_constraint(new, sharding)
            return new, (new.schedule.done, stats.ce, stats.reg, stats.loss, stats.asr, new.schedule.reg_best, cost)

        self._steps = jax.jit(steps, static_argnames="n", donate_argnums=0)
        self._end = jax.jit(end, donate_argnums=0)

    def _get(self, name: str, fn, args, static: dict) -> Any:
        key = (name, args[0].target.shape[0], tuple(sorted(static.items())))  # one executable per width
        if key not in self._cache:
            start = time.perf_counter()
            with jax.default_matmul_precision(self._precision):  # fixed when traced
                self._cache[key] = fn.lower(*args, **static).compile()
            self.compile_time_s += time.perf_counter() - start
        return self._cache[key]

    def steps(self, states, images, params, data_key, first_step: int, n: int) -> LabelState:
        args = (states, images, params, data_key, jnp.asarray(first_step, jnp.int32))
        return self._get("steps", self._steps, args, {"n": n})(*args)

    def end(self, states):
        return self._get("end", self._end, (states,), {})(states)


# ------------------------------------------------------------------------------------------ the scan


def scan_all_labels(
    model: Any,
    images: Any,
    *,
    labels: Sequence[int] | None = None,
    config: ScanConfig = ScanConfig(),
    key: jax.Array,
    callback: Callable[[ScanProgress], None] | None = None,
    devices: Sequence[jax.Device] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> ScanResult:
    """Reverse-engineer the smallest trigger of every label (or of `labels`) of `model`.

    Args:
      model: a Classifier from `ncjax.load_model`, or any object with `apply(params, x) -> logits`, `params`,
        `input_shape` (H, W, C) and `num_classes`.
      images: clean images (N, H, W, C) in the model's input scale (see ScanConfig.preprocessing).
      labels: the labels to scan; all by default.
      config: the settings; `ScanConfig()` is the reference's, `ScanConfig.fast()` a CPU budget.
      key: a JAX PRNG key; the same key and config give the same result on the same machine.
      callback: called with a ScanProgress after every epoch.
      devices: devices to shard the label axis over; all devices of the default backend by default.
      checkpoint: a file written atomically after every epoch with everything needed to continue.
      resume: continue from `checkpoint` if it exists (it must come from the same model, images, labels, config
        and key); the result equals that of an uninterrupted scan.

    Returns:
      A ScanResult. Labels whose trigger never reached the attack-success threshold are marked in
      `reached_threshold`, not raised.
    """
    if not isinstance(config, ScanConfig):
        raise ScanInputError(f"config must be a ScanConfig, got {type(config).__name__}.")
    image_shape, num_classes = _check_model(model)
    clean = _check_images(images, image_shape, config)
    label_list = _check_labels(labels, num_classes)
    key = _check_key(key)
    devices = list(devices) if devices is not None else jax.devices()
    platform = devices[0].platform
    chunk_width = config.label_chunk or default_label_chunk(platform, len(label_list),
                                                            per_label_bytes(model, config.batch_size))
    per_dispatch = min(config.steps_per_dispatch or default_steps_per_dispatch(platform, config),
                       config.steps_per_epoch)
    mesh = Mesh(np.asarray(devices), ("labels",))
    sharded = NamedSharding(mesh, PartitionSpec("labels"))
    replicated = NamedSharding(mesh, PartitionSpec())

    start = time.perf_counter()
    raw = jax.device_put(config.preprocessing.to_raw(jnp.asarray(clean)), replicated)
    params = jax.device_put(model.params, replicated)
    init_key, data_key = jax.random.split(key)
    compiled = _Compiled(model.apply, config, image_shape, len(clean), sharded)
    out = _Outputs(label_list, image_shape, config)
    plan = [per_dispatch] * (config.steps_per_epoch // per_dispatch)
    plan += [config.steps_per_epoch % per_dispatch] if config.steps_per_epoch % per_dispatch else []

    stamp = None
    saved = None
    if checkpoint is not None:
        stamp = fingerprint(clean, label_list, config, jax.random.key_data(key), model.num_classes,
                            *jax.tree_util.tree_leaves(jax.device_get(model.params)))
        if resume and os.path.exists(checkpoint):
            saved = load_checkpoint(checkpoint, fingerprint=stamp)
            out.load(saved["outputs"])
            logger.info("resuming from %s: chunk at label %d, epoch %d", checkpoint, saved["first"], saved["epoch"])
    states = None
    for first in range(saved["first"] if saved else 0, len(label_list), chunk_width):
        chunk = label_list[first:first + chunk_width]
        positions = list(range(first, first + len(chunk)))
        slots = _padded(positions, len(devices))
        targets = jnp.asarray(label_list[[max(p, 0) for p in slots]])
        keys = jax.vmap(lambda label: jax.random.fold_in(init_key, label))(targets)  # per label, not per slot
        states = jax.vmap(init_label, in_axes=(0, 0, None, None))(keys, targets, config, image_shape)
        epoch = 0
        if saved is not None and saved["leaves"] is not None and saved["first"] == first:
            slots, epoch = saved["slots"], saved["epoch"]
            structure = jax.tree_util.tree_structure(states)
            states = jax.tree_util.tree_unflatten(structure, [jnp.asarray(a) for a in saved["leaves"]])
        saved = None
        states = jax.device_put(_mark_padding(states, slots), sharded)
        while True:
            step0 = epoch * config.steps_per_epoch
            for n in plan:
                states = compiled.steps(states, raw, params, data_key, step0, n)
                step0 += n
            states, stats = compiled.end(states)
            done, ce, reg, loss, asr, reg_best, cost = jax.device_get(stats)
            active_before = [i for i, p in enumerate(slots) if p >= 0 and not out.finished[p]]
            out.slot_steps += len(slots) * config.steps_per_epoch
            for i in active_before:
                out.log(slots[i], epoch, ce[i], reg[i], loss[i], asr[i], reg_best[i], cost[i])
            out.label_steps += len(active_before) * config.steps_per_epoch
            finished = [i for i in active_before if done[i]]
            if finished:
                out.harvest(states, slots, finished, asr)
            epoch += 1
            active = [i for i in active_before if not done[i]]
            progress = ScanProgress(epoch, int(out.finished.sum()), len(label_list),
                                    tuple(int(label_list[slots[i]]) for i in active), time.perf_counter() - start)
            logger.debug("epoch %d: %d labels active", epoch, len(active))
            if active:
                width = _width(len(active), len(devices))
                if width < len(slots):
                    keep = [slots[i] for i in active]
                    index = active + [active[0]] * (width - len(active))
                    states = jax.tree_util.tree_map(lambda a: a[jnp.asarray(index)], states)
                    slots = keep + [-1] * (width - len(active))
                    states = jax.device_put(_mark_padding(states, slots), sharded)
            if checkpoint is not None:
                position = (first, epoch, slots, states) if active else (first + chunk_width, 0, [], None)
                save_checkpoint(checkpoint, fingerprint=stamp, first=position[0], epoch=position[1],
                                slots=position[2], states=position[3], outputs=out.state())
            if callback is not None:  # after the checkpoint: an interrupt raised here loses nothing
                callback(progress)
            if not active:
                break

    if states is not None:
        jax.block_until_ready(states)
    return out.result(config, time.perf_counter() - start, compiled.compile_time_s)


def _padded(positions: list[int], num_devices: int) -> list[int]:
    """Slots for a chunk: positions, then -1 padding up to a multiple of the device count."""
    width = -(-len(positions) // num_devices) * num_devices
    return positions + [-1] * (width - len(positions))


def _width(active: int, num_devices: int) -> int:
    """Compacted width: the next power of two, rounded up to a multiple of the device count."""
    width = 1 << max(active - 1, 0).bit_length()
    return -(-width // num_devices) * num_devices


def _mark_padding(states: LabelState, slots: list[int]) -> LabelState:
    """Padding slots (-1) are frozen as finished, so they change nothing and are never read back."""
    padding = jnp.asarray([p < 0 for p in slots])
    schedule = states.schedule._replace(done=states.schedule.done | padding)
    return states._replace(schedule=schedule)


class _Outputs:
    """Host-side results, filled as labels finish."""

    def __init__(self, labels: np.ndarray, image_shape, config: ScanConfig):
        n, (h, w, c), e = len(labels), image_shape, config.max_epochs
        self.labels, self.config, self.image_shape = labels, config, tuple(image_shape)
        self.finished = np.zeros(n, bool)
        self.masks = np.zeros((n, h, w), np.float32)
        self.patterns = np.zeros((n, h, w, c), np.float32)
        self.asr = np.zeros(n, np.float32)
        self.reached = np.zeros(n, bool)
        self.epochs = np.zeros(n, np.int64)
        self.early_stopped = np.zeros(n, bool)
        self.final_cost = np.zeros(n, np.float32)
        self.logs = {name: np.full((n, e), np.nan, np.float32) for name in ("ce", "reg", "loss", "asr", "reg_best", "cost")}
        self.label_steps = 0
        self.slot_steps = 0

    def state(self) -> dict[str, np.ndarray]:
        """Everything this object holds, as arrays, for a checkpoint."""
        arrays = {k: getattr(self, k) for k in ("finished", "masks", "patterns", "asr", "reached", "epochs",
                                                "early_stopped", "final_cost")}
        arrays |= {f"log_{k}": v for k, v in self.logs.items()}
        arrays["steps"] = np.asarray([self.label_steps, self.slot_steps], np.int64)
        return arrays

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        for k, v in arrays.items():
            if k == "steps":
                self.label_steps, self.slot_steps = (int(x) for x in v)
            elif k.startswith("log_"):
                self.logs[k[4:]] = v.copy()
            else:
                setattr(self, k, v.copy())

    def log(self, position: int, epoch: int, *values) -> None:
        for name, value in zip(("ce", "reg", "loss", "asr", "reg_best", "cost"), values):
            self.logs[name][position, epoch] = value

    def harvest(self, states: LabelState, slots: list[int], finished: list[int], last_asr: np.ndarray) -> None:
        index = jnp.asarray(finished)
        schedule, trigger = jax.device_get(jax.tree_util.tree_map(lambda a: a[index], (states.schedule, states.trigger)))
        for j, slot in enumerate(finished):
            p = slots[slot]
            reached = bool(np.isfinite(schedule.reg_best[j]))
            if reached:
                mask, pattern, asr = schedule.best_mask[j], schedule.best_pattern[j], schedule.asr_best[j]
            else:  # the reference returns the final trigger when none succeeded
                final = Trigger(trigger.mask_tanh[j], trigger.pattern_tanh[j])
                mask = np.asarray(trigger_mask(final, self.image_shape, self.config.upsample))
                pattern = np.asarray(trigger_pattern(final))
                asr = last_asr[slot]
            self.masks[p], self.patterns[p], self.asr[p], self.reached[p] = mask, pattern, asr, reached
            self.epochs[p] = int(schedule.epochs[j])
            self.early_stopped[p] = bool(schedule.early_stopped[j])
            self.final_cost[p] = float(schedule.cost[j])
            self.finished[p] = True

    def result(self, config: ScanConfig, wall: float, compile_time: float) -> ScanResult:
        return ScanResult(
            labels=self.labels.copy(), masks=self.masks, patterns=self.patterns,
            l1_norms=np.abs(self.masks).sum(axis=(1, 2)), attack_success=self.asr, reached_threshold=self.reached,
            epochs=self.epochs, early_stopped=self.early_stopped, final_cost=self.final_cost,
            logs=EpochLogs(**self.logs), config=config, loss=config.loss, wall_time_s=wall,
            compile_time_s=compile_time, label_steps=self.label_steps, slot_steps=self.slot_steps,
        )
