"""What a trigger scan will cost, before it runs: FLOPs, memory and time, from the model's declared shapes.

A small file can declare a network whose scan would take days (huge feature maps, thousands of channels) while
every single activation stays within the per-image bound the loader checks. The estimate counts every search's
whole epoch budget (early stopping shortens it), each step a forward and a backward pass (3x the forward FLOPs)
over a batch of images, and not the compile or the per-step work around the model (on the real GTSRB model, the
fast preset: 175 s estimated, 219 s taken). The time divides those FLOPs by a rate: first this
device's dense matmul rate (an optimistic rate, so a refusal on it is safe), then, once the pre-flight has run,
for a scan estimated over MEASURE_ABOVE_S or beyond the limits, the rate the model's own gradient reaches here on
one batch: the figure the progress bar starts from.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.scan.plan import per_label_bytes
from ncjax.search.config import ScanConfig

DEFAULT_MAX_HOURS = 24.0  # a scan estimated beyond this is refused unless forced; the reference preset on a CPU
# scans a GTSRB-sized model in well under it, a compute bomb in weeks
BACKWARD_FACTOR = 3  # a step is a forward and a backward pass: about three forward passes of FLOPs
# Timing the model's gradient costs a compile (a fraction of a second to seconds): worth it for scans estimated
# longer than this, and for any the limits would refuse, so that a refusal rests on the model's own speed.
MEASURE_ABOVE_S = 30.0


@dataclass(frozen=True)
class WorkEstimate:
    """A scan's estimated cost: `searches` searches of at most `steps` steps, each over `batch_size` images."""

    flops_per_image: float  # the model's forward pass on one image
    searches: int
    steps: int
    batch_size: int
    rate: float  # FLOP/s this device reaches
    measured: bool  # the rate is the model's own gradient timed here, not a dense matmul's
    search_bytes: int | None  # activations one search's step keeps (None: the model lists no layer shapes)
    memory_bytes: int | None  # what the device can hold (None: unknown)

    @property
    def total_flops(self) -> float:
        return BACKWARD_FACTOR * self.flops_per_image * self.batch_size * self.searches * self.steps

    @property
    def seconds(self) -> float:
        return self.total_flops / self.rate

    def problem(self, max_hours: float) -> str | None:
        """Why the scan should not start (its time or memory), or None."""
        if self.search_bytes is not None and self.memory_bytes is not None and self.search_bytes > self.memory_bytes:
            return (f"one search's step needs about {_size(self.search_bytes)} of activations, more than this "
                    f"device's {_size(self.memory_bytes)} (lower --batch-size)")
        if self.seconds > max_hours * 3600:
            return (f"the scan is estimated at {_about(self.seconds)}, beyond the {max_hours:g} h limit "
                    "(--max-hours; a smaller --max-epochs, --batch-size or --labels shortens it)")
        return None

    def worth_measuring(self, max_hours: float) -> bool:
        """Whether to time the model's gradient (`measured`) before the scan: long or refused estimates only."""
        return not self.measured and (self.seconds > MEASURE_ABOVE_S or self.problem(max_hours) is not None)

    def line(self) -> str:
        how = "its gradient timed here" if self.measured else "this device's matmul rate"
        return (f"work: {flops_text(self.flops_per_image)} per image forward, {self.searches} searches of up to "
                f"{self.steps} steps on {self.batch_size} images: {_about(self.seconds)} at "
                f"{self.rate / 1e9:.3g} GFLOP/s ({how})")

    def as_dict(self) -> dict[str, Any]:
        return {"flops_per_image": self.flops_per_image, "searches": self.searches, "steps": self.steps,
                "batch_size": self.batch_size, "rate_flops_per_s": self.rate, "measured": self.measured,
                "search_bytes": self.search_bytes, "memory_bytes": self.memory_bytes,
                "estimated_seconds": round(self.seconds, 1)}


def estimate_work(model: Any, *, config: ScanConfig, searches: int, rate: float | None = None) -> WorkEstimate:
    """The scan's cost from the model's shapes at `rate` FLOP/s (default: this device's matmul rate)."""
    device = jax.devices()[0]
    return WorkEstimate(flops_per_image=forward_flops(model), searches=searches,
                        steps=config.max_epochs * config.steps_per_epoch, batch_size=config.batch_size,
                        rate=rate or matmul_rate(device.platform), measured=False,
                        search_bytes=per_label_bytes(model, config.batch_size), memory_bytes=device_memory(device))


def measured(estimate: WorkEstimate, model: Any, images: np.ndarray) -> WorkEstimate:
    """`estimate` at the rate the model's gradient reaches on one batch of `images` here (compiled, then timed)."""
    batch = jnp.asarray(images[:estimate.batch_size], jnp.float32)
    grad = jax.jit(jax.grad(lambda x: model.apply(model.params, x).sum()))
    jax.block_until_ready(grad(batch))
    seconds = _median_time(lambda: grad(batch), repeats=3)
    rate = BACKWARD_FACTOR * estimate.flops_per_image * len(batch) / max(seconds, 1e-9)
    return replace(estimate, rate=rate, measured=True)


def forward_flops(model: Any) -> float:
    """FLOPs of the model's forward pass on one image: XLA's count from the lowered computation (nothing is
    compiled or run), else twice each layer's weights per output position."""
    shape = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    try:
        flops = (jax.jit(model.apply).lower(model.params, shape).cost_analysis() or {}).get("flops")
    except Exception:  # cost analysis is optional in XLA's backends: fall back to the layer table
        flops = None
    if flops:
        return float(flops)
    total = 0.0
    for layer in getattr(model, "layers", ()):
        values = layer.values_per_image
        channels = max(layer.output_shape[-1] or 1, 1)
        total += 2.0 * layer.param_count * values / channels + values
    return max(total, 1.0)


@functools.cache
def matmul_rate(platform: str) -> float:
    """FLOP/s of a square float32 matmul on the default device: a rate models reach at best."""
    size = 1024 if platform == "cpu" else 4096
    a = jnp.ones((size, size), jnp.float32)
    product = jax.jit(lambda m: m @ m)
    jax.block_until_ready(product(a))
    return 2.0 * size**3 / max(_median_time(lambda: product(a), repeats=5), 1e-9)


# Where a container's memory limit is kept (cgroup v2, then v1): below the machine's memory, it is what a process
# may use before the kernel kills it.
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def device_memory(device: jax.Device) -> int | None:
    """Bytes the device can hold: an accelerator's own memory, else the machine's physical memory or the
    container's limit, whichever is lower."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        physical: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not every system names these
        physical = None
    limits = [v for v in (physical, *(_cgroup_limit(path) for path in CGROUP_LIMITS)) if v]
    return min(limits) if limits else None


def _cgroup_limit(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _median_time(call, *, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def duration_text(seconds: float) -> str:
    """A duration as people read it: seconds, minutes, hours or days."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _about(seconds: float) -> str:
    text = duration_text(seconds)
    return text if text.startswith("under") else f"about {text}"


def flops_text(count: float) -> str:
    """A FLOP count in the unit that reads best (MFLOP to PFLOP)."""
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count / 1e6:.3g} MFLOP"


def _size(count: float) -> str:
    return f"{count / (1 << 30):.1f} GiB" if count >= 1 << 30 else f"{count / (1 << 20):.0f} MiB"
