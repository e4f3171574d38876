"""audit.jsonl: one row per model, appended (and flushed) as each finishes, so an interrupted audit keeps them."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ncjax.errors import WriteError

ROWS_FILE = "audit.jsonl"


def read_rows(out: str | os.PathLike) -> list[dict]:
    """The rows written so far (a torn last line, from a crash mid-write, is skipped)."""
    path = Path(out) / ROWS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "name" in row:
            rows.append(row)
    return rows


def latest_rows(out: str | os.PathLike) -> dict[str, dict]:
    """Each model's last row, by name."""
    return {row["name"]: row for row in read_rows(out)}


def append_row(out: str | os.PathLike, row: dict) -> None:
    """Append `row`; after a torn last line (a crash or a full disk mid-write) on a line of its own, so the torn
    one is skipped and this one kept."""
    path = Path(out) / ROWS_FILE
    try:
        torn = path.exists() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
        with open(path, "a") as f:
            f.write(("\n" if torn else "") + json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise WriteError(f"cannot append to {str(path)!r} ({e.strerror or type(e).__name__}); the rows before are "
                         "intact: free the space and rerun the audit, which skips the models already done.") from None


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)
