"""Slots: the unit of work of a scan. A slot is one trigger search.

A slot names the label the trigger must send images to (`target`), the clean images it draws its batches from
(all of them, or only those of one `source` class), a `restart` index (restarts of one search start from
different random triggers and see the same batches) and a `direction` tag that later analyses use to pair a
search with its reverse. `scan_all_labels` is one slot per label; `scan_slots` runs any list of them through
the same vmapped, jitted step.

Each slot's batches come from a pool of image indices: pool 0 is every clean image, and each source class
used gets a pool of its own. The pools are one padded table, so one compiled step serves every slot.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.core.choices import check_literal_fields
from ncjax.errors import ScanInputError

logger = logging.getLogger(__name__)

Direction = Literal["forward", "reverse"]
ALL_IMAGES = 0  # the pool id of the whole clean set


@dataclass(frozen=True, kw_only=True)
class Slot:
    """One trigger search: a target label, the images it draws from, a restart index and a direction tag."""

    target: int
    source: int | None = None  # None: every clean image; else only images whose label is `source`
    restart: int = 0  # restart r > 0 starts from its own random trigger
    direction: Direction = "forward"  # a tag for pairing searches; the search itself ignores it

    def __post_init__(self) -> None:
        check_literal_fields(self)
        for name in ("target", "restart") + (("source",) if self.source is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ScanInputError(f"Slot.{name} must be a non-negative int, got {value!r}.")
        if self.source is not None and self.source == self.target:
            raise ScanInputError(f"Slot source and target are both {self.target}: a source-specific trigger sends "
                                 "images of one class to another.")


def label_slots(labels: Sequence[int]) -> tuple[Slot, ...]:
    """One slot per label: the scan of Neural Cleanse."""
    return tuple(Slot(target=int(label)) for label in labels)


def restart_slots(labels: Sequence[int] | np.ndarray, restarts: int) -> tuple[Slot, ...]:
    """`restarts` searches per label, label-major: (l0, r0), (l0, r1), ..., (l1, r0), ..."""
    if not isinstance(restarts, int) or restarts < 1:
        raise ScanInputError(f"restarts must be a positive int, got {restarts!r}.")
    return tuple(Slot(target=int(label), restart=r) for label in labels for r in range(restarts))


def source_slots(pairs: Sequence[tuple[int, int]], *, restarts: int = 1) -> tuple[Slot, ...]:
    """A search per (source, target) pair: triggers that send images of `source` to `target`."""
    return tuple(Slot(target=int(target), source=int(source), restart=r)
                 for source, target in pairs for r in range(restarts))


class SlotTable(NamedTuple):
    """The device-side description of a slot list: per-slot arrays and the padded image pools."""

    targets: np.ndarray  # (S,) int32
    restarts: np.ndarray  # (S,) int32
    pools: np.ndarray  # (S,) int32: the pool each slot draws from (ALL_IMAGES = every clean image)
    pool_table: np.ndarray  # (P, N) int32: each pool's image indices first, then padding
    pool_sizes: np.ndarray  # (P,) int32

    @property
    def per_slot_batches(self) -> bool:
        """True when some slot draws from a pool of its own; else all slots share each step's batch."""
        return bool((self.pools != ALL_IMAGES).any())


def build_slot_table(slots: Sequence[Slot], *, num_classes: int, num_images: int,
                     image_labels: np.ndarray | None, batch_size: int) -> SlotTable:
    """Check `slots` against the model and the images, and lay out their pools."""
    if not slots or not all(isinstance(s, Slot) for s in slots):
        raise ScanInputError("slots must be a non-empty sequence of ncjax.Slot.")
    if len(set(slots)) != len(slots):
        raise ScanInputError("slots contain duplicates: give each (target, source, restart, direction) once.")
    classes = sorted({s.source for s in slots if s.source is not None})
    bad = sorted({s.target for s in slots if s.target >= num_classes} | {c for c in classes if c >= num_classes})
    if bad:
        raise ScanInputError(f"labels {bad} are out of range: the model has {num_classes} classes "
                             f"(0..{num_classes - 1}).")
    pool_table = np.zeros((1 + len(classes), num_images), np.int32)
    pool_table[ALL_IMAGES] = np.arange(num_images)
    pool_sizes = [num_images]
    if classes:
        if image_labels is None:
            raise ScanInputError("source-class slots need the clean images' labels: pass image_labels.")
        for pool, source in enumerate(classes, start=1):
            members = np.flatnonzero(image_labels == source)
            if not members.size:
                raise ScanInputError(f"no clean image has label {source}, so a source-{source} slot has nothing "
                                     "to draw from; give images of that class or drop the slot.")
            if members.size < batch_size:
                # Not a warning: a small class still gives its search a fair batch, only with repeats.
                logger.info("source class %d has %d images, fewer than a batch (%d): its batches repeat images",
                               source, members.size, batch_size)
            pool_table[pool, :members.size] = members
            pool_sizes.append(members.size)
    pool_of = {c: p for p, c in enumerate(classes, start=1)}
    return SlotTable(
        targets=np.asarray([s.target for s in slots], np.int32),
        restarts=np.asarray([s.restart for s in slots], np.int32),
        pools=np.asarray([ALL_IMAGES if s.source is None else pool_of[s.source] for s in slots], np.int32),
        pool_table=pool_table, pool_sizes=np.asarray(pool_sizes, np.int32),
    )


def check_image_labels(image_labels, num_images: int) -> np.ndarray | None:
    """The clean images' labels as an int array of one per image, or None."""
    if image_labels is None:
        return None
    values = np.asarray(image_labels)
    if values.shape != (num_images,) or not np.issubdtype(values.dtype, np.integer):
        raise ScanInputError(f"image_labels must be one int per image ({num_images}), got shape {values.shape} "
                             f"and dtype {values.dtype}.")
    return values


def slot_keys(init_key: jax.Array, targets: jax.Array, restarts: jax.Array) -> jax.Array:
    """Each slot's initialization key: fold_in(init_key, target), and that folded with the restart index when
    it is not 0, so restart 0 of a label starts where the label's plain scan starts."""
    base = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(init_key, targets)
    again = jax.vmap(jax.random.fold_in)(base, restarts)
    typed = jnp.issubdtype(base.dtype, jax.dtypes.prng_key)
    data = (lambda k: jax.random.key_data(k)) if typed else (lambda k: k)
    chosen = jnp.where((restarts > 0)[:, None], data(again), data(base))
    return jax.random.wrap_key_data(chosen, impl=jax.random.key_impl(base)) if typed else chosen
