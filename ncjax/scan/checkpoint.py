"""Scan checkpoints: everything needed to continue an interrupted scan exactly where its last epoch ended.

Written atomically (temporary file + rename) after every epoch, so an interruption at any moment leaves the
last complete epoch on disk. A fingerprint of the model, images, slots, config and key refuses to resume a
different scan; the format number and the names of the saved state's leaves refuse a checkpoint written by a
version of ncjax whose scan state is laid out differently, with that message rather than a pytree error.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from typing import Any, NamedTuple

import jax
import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import CheckpointError, WriteError
from ncjax.models.safe_files import open_npz, write_npz_atomic

FORMAT = 2  # 2: slots (states keyed by leaf path); 1: labels (states keyed by leaf index)
# A checkpoint holds a chunk's triggers, Adam moments and results: far less than this for any scan that fits memory.
MAX_CHECKPOINT_BYTES = 16 << 30


class CheckpointPosition(NamedTuple):
    """Where the scan stands: the chunk in flight, or the next chunk to start (`lanes` empty)."""

    first: int  # position in the slot list of the chunk's first slot
    epoch: int  # epochs the chunk has run
    lanes: tuple[int, ...]  # per lane of the slot axis: the slot's position, -1 for padding


class SavedScan(NamedTuple):
    position: CheckpointPosition
    states: dict[str, np.ndarray] | None  # the chunk's state leaves by path; None between chunks
    outputs: dict[str, np.ndarray]  # ScanOutputs.state()


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


def state_leaves(states: Any) -> dict[str, np.ndarray]:
    """A pytree's leaves on the host, keyed by their paths ('.trigger.mask_tanh')."""
    flat, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(states))
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


def restore_states(template: Any, leaves: dict[str, np.ndarray], path: str | os.PathLike) -> Any:
    """`template`'s structure filled with the saved leaves; a CheckpointError if their names differ."""
    flat, structure = jax.tree_util.tree_flatten_with_path(template)
    expected = [jax.tree_util.keystr(p) for p, _ in flat]
    if set(expected) != set(leaves):
        missing, unexpected = sorted(set(expected) - set(leaves)), sorted(set(leaves) - set(expected))
        raise CheckpointError(
            f"the checkpoint {str(path)!r} holds a scan state of another layout (missing {_names(missing)}, "
            f"unexpected {_names(unexpected)}): it was written by another version of ncjax. Delete it to start "
            "afresh."
        )
    check_arrays(leaves, {name: np.asarray(leaf) for name, (_, leaf) in zip(expected, flat)}, path, "scan state")
    return jax.tree_util.tree_unflatten(structure, [leaves[name] for name in expected])


def check_arrays(saved: dict[str, np.ndarray], expected: dict[str, np.ndarray], path: str | os.PathLike,
                 what: str) -> None:
    """The saved arrays are exactly those expected: the same names, shapes and dtypes, nothing more."""
    problems = [f"{quoted(name)} missing" for name in expected if name not in saved]
    problems += [f"{quoted(name)} unexpected" for name in saved if name not in expected]
    problems += [f"{quoted(name)} is {saved[name].dtype}{list(saved[name].shape)}, not {a.dtype}{list(a.shape)}"
                 for name, a in expected.items() if name in saved
                 and (saved[name].shape != a.shape or saved[name].dtype != a.dtype)]
    if problems:
        raise invalid(path, f"its {what} does not fit this scan: {'; '.join(problems[:4])}")


def _names(names: list[str]) -> str:
    """Array names read from a file, shown escaped: at most five."""
    return "[" + ", ".join(quoted(name) for name in names[:5]) + (", ..." if len(names) > 5 else "") + "]"


def invalid(path: str | os.PathLike, why: str) -> CheckpointError:
    return CheckpointError(f"the checkpoint {str(path)!r} was not written by this scan ({why}); delete it to start "
                           "afresh.")


def save_checkpoint(path: str | os.PathLike, *, fingerprint: str, position: CheckpointPosition, states: Any,
                    outputs: dict[str, np.ndarray]) -> None:
    """Store the position, the chunk's states (None between chunks) and the host results."""
    arrays: dict[str, np.ndarray] = {f"out/{k}": np.asarray(v) for k, v in outputs.items()}
    if states is not None:
        arrays |= {f"state/{name}": leaf for name, leaf in state_leaves(states).items()}
    meta = np.asarray([FORMAT, position.first, position.epoch, int(states is not None)], np.int64)
    try:
        write_npz_atomic(path, meta=meta, lanes=np.asarray(position.lanes, np.int64),
                         fingerprint=np.asarray(fingerprint), **arrays)
    except OSError as e:
        raise WriteError(f"cannot write the checkpoint {str(path)!r} ({e.strerror or type(e).__name__}); the one "
                         "before it is intact: free the space (or make the folder writable) and rerun with --resume "
                         "(resume=True) to continue from it.") from None


def load_checkpoint(path: str | os.PathLike, *, fingerprint: str) -> SavedScan:
    """The saved scan; a CheckpointError if it has another format or belongs to another scan."""
    try:
        with open_npz(os.fspath(path), error=CheckpointError, what="checkpoint",
                      max_bytes=MAX_CHECKPOINT_BYTES) as data:
            saved = {k: data[k] for k in data.files}
        fmt, first, epoch, has_states = (int(v) for v in saved["meta"])
    except CheckpointError as e:
        raise CheckpointError(f"cannot read the checkpoint: {e} Delete it to start afresh.") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"cannot read the checkpoint {str(path)!r} ({type(e).__name__}: {e}); delete it to "
                              "start afresh.") from None
    if fmt != FORMAT:
        raise CheckpointError(f"the checkpoint {str(path)!r} has format {fmt}, this ncjax reads format {FORMAT}: "
                              "it was written by another version. Delete it to start afresh.")
    if str(saved["fingerprint"]) != fingerprint:
        raise CheckpointError(
            f"the checkpoint {str(path)!r} was written by a scan of another model, data, slot list, config or "
            "seed; resume with the same settings, or delete it to start afresh."
        )
    states = {k[len("state/"):]: v for k, v in saved.items() if k.startswith("state/")}
    return SavedScan(position=CheckpointPosition(first, epoch, tuple(int(v) for v in saved["lanes"])),
                     states=states if has_states else None,
                     outputs={k[len("out/"):]: v for k, v in saved.items() if k.startswith("out/")})
