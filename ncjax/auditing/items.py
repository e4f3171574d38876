"""What an audit scans: model files, folders of them, or a manifest (CSV or JSON), each with its data."""
from __future__ import annotations

import csv
import json
import os
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ncjax.core.choices import ChoiceT, match_choice
from ncjax.core.printable import quoted
from ncjax.data.convention import AUTO
from ncjax.data.preprocess import parse_described
from ncjax.errors import ConfigError, UsageError
from ncjax.models.classifier import LAYOUTS, Layout

MODEL_SUFFIXES = (".h5", ".keras", ".onnx")
Truth = Literal["infected", "clean"]
TRUTHS: tuple[Truth, ...] = typing.get_args(Truth)
MANIFEST_FIELDS = ("path", "data", "data_key", "preprocess", "layout", "architecture", "truth", "target")


@dataclass(frozen=True)
class AuditItem:
    """One model to scan, with its clean images and, where known, whether it is backdoored and to which label."""

    model: str
    data: str | None = None  # None: the audit's --data
    name: str = ""  # its folder and row key; unique in an audit (made from the file name)
    data_key: str | None = None
    preprocess: str | None = None
    layout: Layout | None = None
    architecture: str | None = None  # a Keras weights-only file's architecture JSON
    truth: Truth | None = None
    target: int | None = None


def expand(sources: Sequence[str | os.PathLike | AuditItem]) -> list[AuditItem]:
    """Files as they are, folders as the models inside (sorted), .csv/.json manifests as their rows; names unique."""
    items: list[AuditItem] = []
    for source in sources:
        if isinstance(source, AuditItem):
            items.append(source)
            continue
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file())
            if not found:
                raise UsageError(f"{str(path)!r} holds no model files ({', '.join(MODEL_SUFFIXES)}).")
            items += [AuditItem(str(p)) for p in found]
        elif path.suffix.lower() in (".csv", ".json"):
            items += read_manifest(path)
        else:
            items.append(AuditItem(str(path)))
    return _named(items)


def _named(items: Iterable[AuditItem]) -> list[AuditItem]:
    named, used = [], set()
    for item in items:
        base = item.name or re.sub(r"[^A-Za-z0-9_.-]", "_", Path(item.model).stem) or "model"
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        named.append(AuditItem(**{**vars(item), "name": name}))
    return named


def read_manifest(path: Path) -> list[AuditItem]:
    """A manifest's rows: `path` required; data, data_key, preprocess, layout, architecture, truth, target
    optional. Relative paths are taken from the manifest's folder."""
    try:
        text = path.read_text()
        rows = json.loads(text) if path.suffix.lower() == ".json" else list(csv.DictReader(text.splitlines()))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"cannot read the manifest {str(path)!r} ({e}).") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f"the manifest {str(path)!r} must be a list of rows (objects, or CSV lines with a header).")
    items = []
    for number, row in enumerate(rows, 1):
        where = f"{path}, row {number}"
        unknown = set(row) - set(MANIFEST_FIELDS) - {"name"}
        if unknown or not row.get("path"):
            raise UsageError(f"{where}: needs 'path' and knows {', '.join(MANIFEST_FIELDS)}; got {sorted(row)}.")
        data = _relative(path, row["data"]) if row.get("data") else None
        items.append(AuditItem(model=_relative(path, row["path"]), data=data,
                               name=_folder_name(row.get("name"), where), data_key=row.get("data_key") or None,
                               preprocess=_preprocess(row.get("preprocess"), where),
                               layout=_layout(row.get("layout"), where),
                               architecture=_relative(path, row["architecture"]) if row.get("architecture") else None,
                               truth=_truth(row.get("truth"), where), target=_target(row.get("target"), where)))
    return items


def _preprocess(value, where: str) -> str | None:
    """A row's preprocess: auto, a mode, OFFSET,SCALE or the flags (e.g. '--mean 0.49,0.48,0.45 --std 0.25,0.24,0.26
    --bgr'), checked now rather than when its model's turn comes."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text != AUTO:
        try:
            parse_described(text)
        except ConfigError as e:
            raise UsageError(f"{where}: {e}") from None
    return text


def _folder_name(value, where: str) -> str:
    """A row's name: it names the model's folder inside the audit's, so it is a plain name and nothing more."""
    if value in (None, ""):
        return ""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", text):
        raise UsageError(f"{where}: name {quoted(text)} is not a plain folder name (up to 100 letters, digits, '_', "
                         "'.' and '-', not starting with '.' or '-'); each model's outputs go in a folder of that "
                         "name.")
    return text


def _relative(manifest: Path, value) -> str:
    return str(value) if os.path.isabs(str(value)) else str(manifest.parent / str(value))


def _word(value, choices: tuple[ChoiceT, ...], what: str, where: str) -> ChoiceT | None:
    """A manifest cell that must be one of `choices` (in any case), or None where it is empty."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    chosen = match_choice(text.lower(), choices) or match_choice(text.upper(), choices)
    if chosen is None:
        listed = " or ".join(f"'{choice}'" for choice in choices)
        raise UsageError(f"{where}: {what} must be {listed}, got {quoted(str(value))}.")
    return chosen


def _truth(value, where: str) -> Truth | None:
    return _word(value, TRUTHS, "truth", where)


def _layout(value, where: str) -> Layout | None:
    return _word(value, LAYOUTS, "layout", where)


def _target(value, where: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: target must be a label number, got {value!r}.") from None


def apply_truth(items: list[AuditItem], truth_file: str | os.PathLike | None) -> list[AuditItem]:
    """Truth from a CSV/JSON (path or name, truth, target) for the items that match by path, file or name."""
    if truth_file is None:
        return items
    known = {}
    for entry in read_manifest(Path(truth_file)):
        for key in (entry.model, Path(entry.model).name, Path(entry.model).stem):
            known[key] = entry
    out = []
    for item in items:
        match = known.get(item.model) or known.get(Path(item.model).name) or known.get(item.name)
        out.append(item if match is None else AuditItem(**{**vars(item), "truth": match.truth,
                                                           "target": match.target}))
    return out
