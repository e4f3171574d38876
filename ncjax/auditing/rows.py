"""audit.jsonl: one row per model, appended (and flushed) as each finishes, so an interrupted audit keeps them."""
from __future__ import annotations

import json
import os
from pathlib import Path

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
    with open(Path(out) / ROWS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
