"""scan_slots and scan_all_labels: many Neural Cleanse trigger searches in one compiled step (run_searches: any
search kind, so the maximum-margin searches of ncjax.scan.margins run here too).

A slot is one search (ncjax.scan.slots); ScanConfig.search says what it optimizes (ncjax.search.kinds). Slots run
in chunks; within a chunk every slot's state has a leading slot axis and all lanes advance in lockstep, the step
`jax.vmap(step)` compiled once per width.
After each epoch one small device->host read returns the epoch's summary. Slots that finish are harvested
and the chunk is compacted to the next power-of-two width, so finished slots stop costing compute while the
number of compiled widths stays small. With several devices the slot axis is sharded over a mesh axis.

A scan is these steps: check the inputs, plan (ncjax.scan.plan), resume from a checkpoint, then per chunk: start,
and per epoch run the steps, record and harvest, compact, checkpoint, report progress.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.errors import ConfigError, ScanInputError
from ncjax.scan.checkpoint import (
    CheckpointPosition,
    fingerprint,
    invalid,
    load_checkpoint,
    restore_states,
    save_checkpoint,
)
from ncjax.scan.compiled import CompiledSteps, Pools
from ncjax.scan.focus import slots_to_freeze
from ncjax.scan.inputs import check_config_fits, check_images, check_key, check_labels, check_model
from ncjax.scan.margin_outputs import MarginOutputs
from ncjax.scan.margin_result import MarginResult
from ncjax.scan.outputs import ScanOutputs, SearchOutputs
from ncjax.scan.plan import PADDING, ScanPlan, compacted_width, narrower_widths, padded_lanes, plan_scan
from ncjax.scan.result import ScanProgress, ScanResult
from ncjax.scan.slots import Slot, SlotTable, build_slot_table, check_image_labels, restart_slots, slot_keys
from ncjax.search.config import ScanConfig
from ncjax.search.kinds import SearchState, search_functions
from ncjax.search.step import EpochSummary

logger = logging.getLogger(__name__)
Callback = Callable[[ScanProgress], None]
OUTPUTS: dict[str, type[SearchOutputs]] = {"trigger": ScanOutputs, "margin": MarginOutputs}


@dataclass(frozen=True)
class _Scan:
    """What stays fixed while a scan runs."""

    config: ScanConfig
    plan: ScanPlan
    table: SlotTable
    compiled: CompiledSteps
    raw_images: jax.Array  # replicated, raw pixels
    params: Any  # replicated
    pools: Pools
    init_key: jax.Array
    data_key: jax.Array
    image_shape: tuple[int, int, int]
    focus: bool  # narrow to candidates after config.warmup_epochs (ncjax.scan.focus)


@dataclass
class _Chunk:
    """The chunk in flight: which slot each lane holds, its states, and the epochs it has run."""

    first: int
    epoch: int
    lanes: list[int]
    states: SearchState


def scan_slots(
    model: Any,
    images: Any,
    slots: Sequence[Slot],
    *,
    image_labels: Any = None,
    config: ScanConfig = ScanConfig(),
    key: jax.Array,
    callback: Callback | None = None,
    devices: Sequence[jax.Device] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> ScanResult:
    """Run every slot's trigger search; the result's arrays follow the order of `slots`.

    Args:
      model: a Classifier from `ncjax.load_model`, or any object with `apply(params, x) -> logits`, `params`,
        `input_shape` (H, W, C) and `num_classes`.
      images: clean images (N, H, W, C) in the model's input scale (see ScanConfig.preprocessing).
      slots: the searches (ncjax.Slot; see label_slots, restart_slots, source_slots).
      image_labels: the images' labels (N,), needed by slots with a source class.
      config, key, callback, devices, checkpoint, resume: as in `scan_all_labels`.
    """
    if isinstance(config, ScanConfig) and config.search != "trigger":
        raise ConfigError(f"scan_slots and scan_all_labels run trigger searches; config.search is {config.search!r}: "
                          "call ncjax.scan_margins for the maximum-margin search.")
    result = run_searches(model, images, slots, image_labels=image_labels, config=config, key=key, callback=callback,
                          devices=devices, checkpoint=checkpoint, resume=resume)
    assert isinstance(result, ScanResult)  # a trigger search's outputs
    return result


def run_searches(
    model: Any,
    images: Any,
    slots: Sequence[Slot],
    *,
    image_labels: Any = None,
    config: ScanConfig,
    key: jax.Array,
    callback: Callback | None = None,
    devices: Sequence[jax.Device] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> ScanResult | MarginResult:
    """scan_slots for any search kind (config.search): a ScanResult for trigger searches, a MarginResult for
    maximum-margin ones."""
    if not isinstance(config, ScanConfig):
        raise ScanInputError(f"config must be a ScanConfig, got {type(config).__name__}.")
    image_shape = check_model(model)
    check_config_fits(config, image_shape)
    clean = check_images(images, image_shape, config)
    table = build_slot_table(tuple(slots), num_classes=int(model.num_classes), num_images=len(clean),
                             image_labels=check_image_labels(image_labels, len(clean)), batch_size=config.batch_size)
    key = check_key(key)
    devices = list(devices) if devices is not None else jax.devices()
    start = time.perf_counter()
    scan = _prepare(model, clean, table, config, key, devices, image_shape)
    out = OUTPUTS[config.search](tuple(slots), image_shape, config)
    stamp = None if checkpoint is None else _fingerprint(model, clean, slots, image_labels, config, key)
    chunk = None
    if resume and checkpoint is not None and stamp is not None and os.path.exists(checkpoint):
        chunk = _resume(scan, out, checkpoint, stamp)
    first = chunk.first if chunk is not None else _resume_position(out)
    states = None
    try:
        while first < len(slots):
            chunk = chunk if chunk is not None else _start_chunk(scan, first)
            states = _run_chunk(scan, chunk, out, checkpoint, stamp, callback, start)
            first, chunk = first + scan.plan.chunk_width, None
        if states is not None:
            jax.block_until_ready(states)
    finally:
        scan.compiled.close()
    compiled = scan.compiled
    return out.result(wall=time.perf_counter() - start, compile_time=compiled.compile_time_s,
                      compile_count=compiled.compile_count, compile_background=compiled.background_compile_s,
                      host_time=out.host_time_s)


def scan_all_labels(
    model: Any,
    images: Any,
    *,
    labels: Sequence[int] | None = None,
    config: ScanConfig = ScanConfig(),
    key: jax.Array,
    callback: Callback | None = None,
    devices: Sequence[jax.Device] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> ScanResult:
    """Reverse-engineer the smallest trigger of every label (or of `labels`) of `model`: one slot per label.

    Args:
      model: a Classifier from `ncjax.load_model`, or any object with `apply(params, x) -> logits`, `params`,
        `input_shape` (H, W, C) and `num_classes`.
      images: clean images (N, H, W, C) in the model's input scale (see ScanConfig.preprocessing).
      labels: the labels to scan; all by default.
      config: the settings; `ScanConfig()` is the reference's, `ScanConfig.focused()` a CPU budget.
      key: a JAX PRNG key; the same key and config give the same result on the same machine (on a GPU only with
        `config.deterministic`: XLA:GPU's float32 sums are not reproducible run to run otherwise).
      callback: called with a ScanProgress after every epoch.
      devices: devices to shard the slot axis over; all devices of the default backend by default.
      checkpoint: a file written atomically after every epoch with everything needed to continue.
      resume: continue from `checkpoint` if it exists (it must come from the same model, images, labels, config
        and key); the result equals that of an uninterrupted scan.

    Returns:
      A ScanResult with one slot per label and restart (config.restarts; label-major), which
      `ncjax.best_over_restarts` reduces to one trigger per label. Labels whose trigger never reached the
      attack-success threshold are marked in
      `reached_threshold`, not raised.
    """
    if not isinstance(config, ScanConfig):
        raise ScanInputError(f"config must be a ScanConfig, got {type(config).__name__}.")
    check_model(model)
    slots = restart_slots(check_labels(labels, int(model.num_classes)), config.restarts)
    return scan_slots(model, images, slots, config=config, key=key, callback=callback, devices=devices,
                      checkpoint=checkpoint, resume=resume)


# ------------------------------------------------------------------------------------------ the steps


def _prepare(model, clean: np.ndarray, table: SlotTable, config: ScanConfig, key: jax.Array, devices,
             image_shape) -> _Scan:
    plan = plan_scan(model, config, len(table.targets), devices)
    init_key, data_key = jax.random.split(key)
    raw = jax.device_put(config.preprocessing.to_raw(jnp.asarray(clean)), plan.replicated)
    pools = jax.device_put(Pools(table=jnp.asarray(table.pool_table), sizes=jnp.asarray(table.pool_sizes)),
                           plan.replicated)
    compiled = CompiledSteps(model.apply, config, image_shape, len(clean), plan.sharded,
                             per_slot_batches=table.per_slot_batches)
    focus = config.warmup_epochs is not None
    if focus and plan.chunk_width < len(table.targets):
        # The choice ranks every label's warm-up; a later chunk's labels have not run when the first's ends.
        warnings.warn(f"the focused search needs every search in one chunk, but {len(table.targets)} do not fit the "
                      f"memory budget ({plan.chunk_width} per chunk): every label runs the whole schedule instead. "
                      "Set label_chunk to the number of searches if memory allows, or use fewer restarts.",
                      stacklevel=3)
        focus = False
    return _Scan(config=config, plan=plan, table=table, compiled=compiled, raw_images=raw,
                 params=jax.device_put(model.params, plan.replicated), pools=pools, init_key=init_key,
                 data_key=data_key, image_shape=image_shape, focus=focus)


def _fingerprint(model, clean, slots, image_labels, config, key) -> str:
    labels = None if image_labels is None else np.asarray(image_labels)
    config = config.replace(precompile_widths=None)  # when executables are built changes no result
    return fingerprint(clean, tuple(slots), labels, config, jax.random.key_data(key), model.num_classes,
                       *jax.tree_util.tree_leaves(jax.device_get(model.params)))


def _fresh_states(scan: _Scan, lanes: list[int]) -> SearchState:
    """Initial states of `lanes`; a padding lane repeats the chunk's first slot (and is frozen)."""
    index = np.asarray([max(p, 0) for p in lanes])
    targets, pools = jnp.asarray(scan.table.targets[index]), jnp.asarray(scan.table.pools[index])
    keys = slot_keys(scan.init_key, targets, jnp.asarray(scan.table.restarts[index]))
    # Op by op, not jitted: XLA's fusion would round the initial pattern differently (by up to 3e-4 in tanh
    # space), and Adam amplifies that into other results for the same key (a key's results are kept stable).
    init = search_functions(scan.config.search).init
    return jax.vmap(init, in_axes=(0, 0, 0, None, None))(keys, targets, pools, scan.config, scan.image_shape)


def _start_chunk(scan: _Scan, first: int) -> _Chunk:
    count = min(scan.plan.chunk_width, len(scan.table.targets) - first)
    lanes = padded_lanes(list(range(first, first + count)), scan.plan.num_devices)
    return _Chunk(first=first, epoch=0, lanes=lanes, states=_place(scan, _fresh_states(scan, lanes), lanes))


def _resume(scan: _Scan, out: SearchOutputs, checkpoint, stamp: str) -> _Chunk | None:
    """The chunk to continue from `checkpoint` (None when it stopped between chunks); restores `out`. The
    checkpoint is checked whole first: arrays, position and lanes as this scan writes them."""
    saved = load_checkpoint(checkpoint, fingerprint=stamp)
    out.load(saved.outputs, checkpoint)
    position = saved.position
    _check_position(scan, out, position, has_states=saved.states is not None, path=checkpoint)
    logger.info("resuming from %s: chunk at slot %d, epoch %d", checkpoint, position.first, position.epoch)
    if saved.states is None:
        return None
    lanes = list(position.lanes)
    template = _fresh_states(scan, lanes)
    states = restore_states(template, saved.states, checkpoint)
    return _Chunk(first=position.first, epoch=position.epoch, lanes=lanes,
                  states=_place(scan, jax.device_put(states), lanes))


def _check_position(scan: _Scan, out: SearchOutputs, position: CheckpointPosition, *, has_states: bool, path) -> None:
    """A checkpoint's position agrees with its results; a CheckpointError names the first condition that fails."""
    failed = next((why for why, holds in _position_conditions(scan, out, position, has_states=has_states)
                   if not holds()), None)
    if failed is not None:
        raise invalid(path, f"its position (slot {position.first}, epoch {position.epoch}, lanes "
                            f"{list(position.lanes)[:8]}) does not match its results: {failed}")


def _position_conditions(scan: _Scan, out: SearchOutputs, position: CheckpointPosition, *, has_states: bool):
    """(what must hold, a check of it) in order, each checked only once those before it hold."""
    count, width = len(scan.table.targets), scan.plan.chunk_width
    first, lanes, epoch = position.first, list(position.lanes), position.epoch
    active = [p for p in lanes if p != PADDING]
    expected_done = np.arange(count) < first
    if has_states:  # the chunk in flight may have finished some of its slots already
        expected_done |= (np.arange(count) >= first) & (np.arange(count) < first + width) & out.finished
    yield "the first slot lies in the scan and starts a chunk", lambda: (
        0 <= first <= count and (first % width == 0 or first == count))
    if has_states:
        yield "the chunk in flight has lanes, each slot once", lambda: (
            len(lanes) >= 1 and len(active) >= 1 and len(set(active)) == len(active))
        yield "every lane's slot is in the chunk and unfinished", lambda: all(
            first <= p < min(first + width, count) and not out.finished[p] for p in active)
        yield "the epoch lies within the schedule", lambda: 1 <= epoch <= scan.config.max_epochs
        yield "the lanes split evenly over the devices", lambda: len(lanes) % scan.plan.num_devices == 0
        yield "every lane's logs hold one entry per epoch run", lambda: all(
            out.logged_epochs()[p] == epoch for p in active)
    else:
        yield "between chunks there are no lanes and no epoch", lambda: not lanes and epoch == 0
    yield "the finished slots are those before the chunk and those done in it", lambda: np.array_equal(
        out.finished, expected_done)


def _resume_position(out: SearchOutputs) -> int:
    """Where to start when no chunk is in flight: after the last slot already finished in order."""
    unfinished = np.flatnonzero(~out.finished)
    return int(unfinished[0]) if unfinished.size else len(out.finished)


def _run_chunk(scan: _Scan, chunk: _Chunk, out: SearchOutputs, checkpoint, stamp, callback: Callback | None,
               start: float) -> SearchState:
    """Epochs of one chunk until every slot in it has finished; returns the last states."""
    first_epoch = True
    while True:
        summary = _run_epoch(scan, chunk)
        if first_epoch and scan.plan.precompile:  # the first width is built; the device runs while these compile
            _precompile_narrower(scan, chunk)
        first_epoch = False
        host_start = time.perf_counter()
        active = _record(scan, chunk, out, summary)
        chunk.epoch += 1
        active = _freeze(scan, chunk, out, summary, active)
        progress = ScanProgress(chunk.epoch, int(out.finished.sum()), len(out.finished),
                                tuple(int(scan.table.targets[chunk.lanes[i]]) for i in active),
                                time.perf_counter() - start)
        logger.debug("epoch %d: %d slots active", chunk.epoch, len(active))
        if active:
            _compact(scan, chunk, active)
        if checkpoint is not None:
            _save(scan, chunk, out, checkpoint, stamp, done=not active)
        if callback is not None:  # after the checkpoint: an interrupt raised here loses nothing
            callback(progress)
        out.host_time_s += time.perf_counter() - host_start
        if not active:
            return chunk.states


def _run_epoch(scan: _Scan, chunk: _Chunk) -> EpochSummary:
    step = chunk.epoch * scan.config.steps_per_epoch
    states = chunk.states
    for n in scan.plan.dispatch:
        states = scan.compiled.steps(states, scan.raw_images, scan.params, scan.data_key, scan.pools, step, n)
        step += n
    chunk.states, summary = scan.compiled.end(states)
    return jax.device_get(summary)


def _precompile_narrower(scan: _Scan, chunk: _Chunk) -> None:
    widths = narrower_widths(len(chunk.lanes), scan.plan.num_devices, scan.plan.min_width)
    scan.compiled.precompile(chunk.states, scan.raw_images, scan.params, scan.data_key, scan.pools, widths,
                             scan.plan.dispatch)


def _record(scan: _Scan, chunk: _Chunk, out: SearchOutputs, summary: EpochSummary) -> list[int]:
    """Log the epoch, harvest the slots that finished in it; returns the lanes still searching."""
    searching = out.record_epoch(chunk.lanes, chunk.epoch, summary, scan.config.steps_per_epoch)
    finished = [lane for lane in searching if summary.done[lane]]
    if finished:
        out.harvest(chunk.states, chunk.lanes, finished, summary)
    return [lane for lane in searching if not summary.done[lane]]


def _freeze(scan: _Scan, chunk: _Chunk, out: SearchOutputs, summary: EpochSummary, active: list[int]) -> list[int]:
    """After the warm-up, harvest the lanes the focus drops (their best trigger so far is their result); returns
    the lanes still searching (the compaction then makes the others padding)."""
    warmup = scan.config.warmup_epochs
    if not scan.focus or warmup is None or chunk.epoch < warmup or not active:
        return active
    positions = [chunk.lanes[lane] for lane in active]
    frozen = set(slots_to_freeze(scan.table.targets, out.logs["reg_best"], warmup_epochs=warmup,
                                 candidates=scan.config.candidates, anchors=scan.config.anchors, searching=positions))
    if not frozen:
        return active
    lanes = [lane for lane in active if chunk.lanes[lane] in frozen]
    out.harvest(chunk.states, chunk.lanes, lanes, summary)
    logger.info("focus after epoch %d: %d searches frozen", chunk.epoch, len(lanes))
    return [lane for lane in active if lane not in lanes]


def _compact(scan: _Scan, chunk: _Chunk, active: list[int]) -> None:
    """Drop finished lanes once the active ones fit a narrower power-of-two width (not below the plan's floor);
    at the same width, make them padding (frozen), so the lanes a checkpoint records are the searching ones."""
    width = compacted_width(len(active), scan.plan.num_devices, scan.plan.min_width)
    if width >= len(chunk.lanes):
        if any(p != PADDING and lane not in active for lane, p in enumerate(chunk.lanes)):
            chunk.lanes = [p if lane in active else PADDING for lane, p in enumerate(chunk.lanes)]
            chunk.states = _place(scan, chunk.states, chunk.lanes)
        return
    index = active + [active[0]] * (width - len(active))
    chunk.lanes = [chunk.lanes[i] for i in active] + [PADDING] * (width - len(active))
    chunk.states = _place(scan, chunk.states, chunk.lanes, index)


def _save(scan: _Scan, chunk: _Chunk, out: SearchOutputs, checkpoint, stamp: str, *, done: bool) -> None:
    if done:
        next_first = min(chunk.first + scan.plan.chunk_width, len(scan.table.targets))
        position, states = CheckpointPosition(next_first, 0, ()), None
    else:
        position, states = CheckpointPosition(chunk.first, chunk.epoch, tuple(chunk.lanes)), chunk.states
    save_checkpoint(checkpoint, fingerprint=stamp, position=position, states=states, outputs=out.state())


def _place(scan: _Scan, states: SearchState, lanes: list[int], index: Sequence[int] | None = None) -> SearchState:
    """The lanes `index` of `states` (all of them by default), padding lanes frozen as finished (they change
    nothing and are never read back), sharded."""
    # Host arrays go straight in: jnp.asarray of a host array compiles a copy per shape in this JAX.
    taken = np.arange(len(lanes), dtype=np.int32) if index is None else np.asarray(index, np.int32)
    padding = np.asarray([p == PADDING for p in lanes])
    return jax.device_put(_take_lanes(states, taken, padding), scan.plan.sharded)


@jax.jit
def _take_lanes(states: SearchState, index: jax.Array, padding: jax.Array) -> SearchState:
    # One compiled call per (width, new width): leaf by leaf, this was a gather per leaf and width, compiled on
    # the fly (on a GPU over a hundred small compiles per scan).
    return jax.tree_util.tree_map(lambda a: a[index], states).frozen(padding)
