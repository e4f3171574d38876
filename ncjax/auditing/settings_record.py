"""What an audit row records of how its model was scanned, so a rerun with other settings never passes the old
rows off as its own."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from ncjax.auditing.config import ScanSettings
from ncjax.auditing.items import AuditItem
from ncjax.errors import UsageError

# Where the compiled steps are kept changes no result.
_NOT_RECORDED = ("compile_cache", "compile_cache_dir")


def settings_record(item: AuditItem, settings: ScanSettings, data: str | None) -> dict[str, Any]:
    """The scan settings, and the model's own manifest columns, as plain JSON values."""
    scan = {name: value for name, value in dataclasses.asdict(settings).items() if name not in _NOT_RECORDED}
    record = {"scan": scan, "data": item.data or data, "data_key": item.data_key, "preprocess": item.preprocess,
              "layout": item.layout, "architecture": item.architecture}
    return json.loads(json.dumps(record))  # tuples become lists, as a row read back from audit.jsonl holds them


def check_same_settings(rows: dict[str, dict], items: list[AuditItem], settings: ScanSettings,
                        data: str | None, *, out: str) -> None:
    """Refuse to reuse finished rows that were scanned otherwise than these settings would scan them, naming the
    first differences."""
    for item in items:
        row = rows.get(item.name)
        if row is None or row.get("status") != "done":
            continue
        recorded, wanted = row.get("settings"), settings_record(item, settings, data)
        if recorded != wanted:
            differences = "records no settings" if recorded is None else "differs in " + ", ".join(
                _differences(recorded, wanted)[:4])
            raise UsageError(f"the audit in {out!r} scanned {item.name!r} with other settings (its row {differences}); "
                             "rerun with the same settings to reuse its rows, or give another --out.")


def _differences(recorded: Any, wanted: Any, path: str = "") -> list[str]:
    if isinstance(recorded, dict) and isinstance(wanted, dict):
        found = []
        for key in sorted(set(recorded) | set(wanted)):
            found += _differences(recorded.get(key), wanted.get(key), f"{path}.{key}" if path else key)
        return found
    return [] if recorded == wanted else [f"{path} ({recorded!r} here, {wanted!r} now)"]
