"""How a scan runs on this machine: chunk width, steps per compiled call, the device mesh, and the lane
layout of the slot axis (padding to the device count, compaction to powers of two as slots finish)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ncjax.search.config import ScanConfig

# Slot chunk: every slot at once on every backend. Measured on the 2-core AVX2 CPU (GTSRB network, batch 32,
# YNNPACK fusion off; make bench, 5 interleaved rounds): one 43-wide vmap per call 33.7 label-steps/s against
# 30.2 for one label per call; earlier single runs gave 32.8 against 32.0, and whole fast-preset scans took 212 s
# in one chunk of 43 and 207.5 s in chunks of 1, so width costs nothing on a CPU and wins a little per step.
# Steps per dispatch: a lax.scan over steps made each step 4-8x slower on XLA:CPU, so CPUs dispatch one step per
# call; accelerators run a whole epoch per call.
CPU_STEPS_PER_DISPATCH = 1

# Memory bound on the chunk, so large heads never run out of memory: activations kept for the backward pass
# are estimated per slot (batch x the layers' output sizes x 4 bytes x 3) and a chunk stays within this.
CHUNK_MEMORY_BUDGET = {"cpu": 4 << 30}
DEFAULT_CHUNK_MEMORY_BUDGET = 16 << 30
CHUNK_WITHOUT_LAYER_SIZES = 64
PADDING = -1  # the slot position of a padding lane


def per_label_bytes(model: Any, batch_size: int) -> int | None:
    """Rough activation memory of one slot's step, from the model's layer table (None if it has none)."""
    sizes = [layer.values_per_image for layer in getattr(model, "layers", ()) if layer.depth == 0]
    return int(batch_size * sum(sizes) * 4 * 3) if sizes else None


def default_label_chunk(platform: str, num_slots: int, label_bytes: int | None = None) -> int:
    """Every slot at once when it fits the memory budget (the same rule on every backend measured)."""
    if label_bytes is None:
        return min(num_slots, CHUNK_WITHOUT_LAYER_SIZES)
    budget = CHUNK_MEMORY_BUDGET.get(platform, DEFAULT_CHUNK_MEMORY_BUDGET)
    return max(1, min(num_slots, budget // label_bytes))


def default_steps_per_dispatch(platform: str, config: ScanConfig) -> int:
    return CPU_STEPS_PER_DISPATCH if platform == "cpu" else config.steps_per_epoch


def precompiles(platform: str, config: ScanConfig) -> bool:
    """Compile narrower widths ahead: on accelerators (the host's cores are free while the device runs), not on
    CPUs, where the compiler would take the cores the steps run on and the fast preset never compacts."""
    return config.precompile_widths if config.precompile_widths is not None else platform != "cpu"


@dataclass(frozen=True)
class ScanPlan:
    chunk_width: int  # slots per chunk
    dispatch: tuple[int, ...]  # optimizer steps per compiled call, one entry per call of an epoch
    num_devices: int
    min_width: int  # compaction stops at this many lanes
    precompile: bool  # compile the narrower widths in background threads
    sharded: NamedSharding  # the slot axis split over the devices
    replicated: NamedSharding  # images and model weights on every device


def plan_scan(model: Any, config: ScanConfig, num_slots: int, devices: Sequence[jax.Device]) -> ScanPlan:
    platform = devices[0].platform
    width = config.label_chunk or default_label_chunk(platform, num_slots, per_label_bytes(model, config.batch_size))
    per_call = min(config.steps_per_dispatch or default_steps_per_dispatch(platform, config), config.steps_per_epoch)
    calls, rest = divmod(config.steps_per_epoch, per_call)
    mesh = Mesh(np.asarray(devices), ("labels",))
    return ScanPlan(chunk_width=width, dispatch=(per_call,) * calls + ((rest,) if rest else ()),
                    num_devices=len(devices), min_width=config.min_lane_width or 1,
                    precompile=precompiles(platform, config),
                    sharded=NamedSharding(mesh, PartitionSpec("labels")),
                    replicated=NamedSharding(mesh, PartitionSpec()))


def padded_lanes(positions: list[int], num_devices: int) -> list[int]:
    """A chunk's lanes: slot positions, then padding up to a multiple of the device count."""
    width = -(-len(positions) // num_devices) * num_devices
    return positions + [PADDING] * (width - len(positions))


def narrower_widths(width: int, num_devices: int, floor: int = 1) -> list[int]:
    """The widths below `width` that compacting a chunk of `width` lanes may visit, widest first."""
    widths = {compacted_width(active, num_devices, floor) for active in range(1, width)}
    return sorted((w for w in widths if w < width), reverse=True)


def compacted_width(active: int, num_devices: int, floor: int = 1) -> int:
    """The width after compaction: the next power of two (at least `floor`), rounded up to a multiple of the
    device count, so the number of compiled widths stays small."""
    width = max(1 << max(active - 1, 0).bit_length(), floor)
    return -(-width // num_devices) * num_devices
