"""Scan checkpoints: everything needed to continue an interrupted scan exactly where its last epoch ended.

Written atomically (temporary file + rename) after every epoch, so an interruption at any moment leaves the
last complete epoch on disk. A fingerprint of the model, images, labels, config and key refuses to resume a
different scan.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ncjax.errors import CheckpointError

FORMAT = 1



def fingerprint(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray) or isinstance(part, jax.Array):
            array = np.ascontiguousarray(np.asarray(part))
            digest.update(str((array.shape, array.dtype)).encode())
            digest.update(array.tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, *, fingerprint: str, first: int, epoch: int, slots: list[int],
                    states: Any, outputs: dict[str, np.ndarray]) -> None:
    """Store the scan position, the current chunk's states (or None between chunks) and the host results."""
    arrays: dict[str, np.ndarray] = {f"out/{k}": np.asarray(v) for k, v in outputs.items()}
    if states is not None:
        for i, leaf in enumerate(jax.tree_util.tree_leaves(jax.device_get(states))):
            arrays[f"state/{i}"] = np.asarray(leaf)
    meta = np.asarray([FORMAT, first, epoch, int(states is not None)], np.int64)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, meta=meta, slots=np.asarray(slots, np.int64), fingerprint=np.asarray(fingerprint), **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, *, fingerprint: str) -> dict[str, Any]:
    """The saved position; raises CheckpointError if it belongs to another scan."""
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read the checkpoint {str(path)!r}: {e}. Delete it to start afresh.") from e
    if str(saved["fingerprint"]) != fingerprint:
        raise CheckpointError(
            f"the checkpoint {str(path)!r} was written by a scan of another model, data, label list, config or "
            "seed; resume with the same settings, or delete it to start afresh."
        )
    fmt, first, epoch, has_states = (int(v) for v in saved["meta"])
    if fmt != FORMAT:
        raise CheckpointError(f"checkpoint format {fmt} is not {FORMAT}; delete {str(path)!r} to start afresh.")
    leaves = [saved[f"state/{i}"] for i in range(sum(k.startswith("state/") for k in saved))]
    return {"first": first, "epoch": epoch, "slots": saved["slots"].tolist(), "leaves": leaves if has_states else None,
            "outputs": {k[4:]: v for k, v in saved.items() if k.startswith("out/")}}
