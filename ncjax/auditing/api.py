"""ncjax.audit: scan many models, here one after another or as Ray tasks, each into its own folder, one row each."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ncjax.auditing.cluster import import_ray, scan_on_ray
from ncjax.auditing.config import AuditConfig, ScanSettings
from ncjax.auditing.items import AuditItem, apply_truth, expand
from ncjax.auditing.local import scan_item
from ncjax.auditing.rows import append_row, latest_rows
from ncjax.auditing.settings_record import check_same_settings
from ncjax.auditing.tables import ROC_FILE, Rates, rates, write_csv, write_markdown, write_roc
from ncjax.errors import UsageError
from ncjax.pipeline.out_lock import hold_out


@dataclass(frozen=True)
class AuditResult:
    """Every model's row (its last, in the order given), how many failed, and the rates against the truth."""

    rows: tuple[dict, ...]
    failed: int
    skipped: int  # rows already written by an earlier run, not scanned again
    rates: Rates | None


def audit(models: Sequence[str | os.PathLike | AuditItem], *, out: str | os.PathLike, data: str | None = None,
          truth: str | os.PathLike | None = None, scan: ScanSettings = ScanSettings(),
          config: AuditConfig = AuditConfig(), callback: Callable[[dict], None] | None = None) -> AuditResult:
    """Scan every model (files, folders of models, CSV/JSON manifests) into out/<name>/, appending each row to
    out/audit.jsonl as it finishes; a rerun skips models whose row is written and resumes a model whose scan
    checkpoint is there. A model that cannot be read or fails gets an error row and the audit goes on.

    Args:
      data: the clean images for models whose manifest row names none.
      truth: a CSV/JSON (path or name, truth infected|clean, target) for rates, ROC-AUC and the ROC figure.
      scan: how every model is scanned (the scan's settings, the verdict's, the labels, the seed).
      config: where the scans run (here, one after another, or as Ray tasks) and the progress bar.
      callback: called with each new row.
    """
    items = apply_truth(expand(models), truth)
    missing = [item.name for item in items if not (item.data or data)]
    if missing:
        raise UsageError(f"no clean images for {', '.join(missing[:5])}: give --data, or a data column in the "
                         "manifest.")
    if config.ray is not None:
        import_ray()  # before any work: a missing extra is a one-line error, not a failed row per model
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with hold_out(out, what="the audit's output folder"):  # a second audit there is refused, not interleaved
        return _audit_into(out, items, data=data, scan=scan, config=config, callback=callback)


def _audit_into(out: Path, items: list[AuditItem], *, data: str | None, scan: ScanSettings, config: AuditConfig,
                callback: Callable[[dict], None] | None) -> AuditResult:
    """The audit once its folder is held: the models not done yet, then the tables of every row."""
    earlier = latest_rows(out)
    check_same_settings(earlier, items, scan, data, out=str(out))
    done = {name for name, row in earlier.items() if row.get("status") == "done"}
    todo = [item for item in items if item.name not in done]
    with tqdm(total=len(todo), unit="model", desc="audit", file=sys.stderr, disable=not config.progress,
              dynamic_ncols=True) as bar:
        def on_row(row: dict) -> None:
            append_row(out, row)
            bar.update(1)
            if callback is not None:
                callback(row)

        if config.ray is None:
            for item in todo:
                on_row(scan_item(item, out, data=data, settings=scan))
        else:
            scan_on_ray(todo, out, data=data, settings=scan, config=config, on_row=on_row)
    every = latest_rows(out)
    # The truth given now labels the rows, reused or not: it is not a scan setting.
    rows = tuple({**every[item.name], "truth": item.truth, "target": item.target} for item in items
                 if item.name in every)
    write_csv(list(rows), out / "audit.csv")
    drawn = write_roc(list(rows), out / ROC_FILE)
    if not drawn:
        (out / ROC_FILE).unlink(missing_ok=True)  # an earlier run's figure no longer matches the rows
    write_markdown(list(rows), out / "audit.md", roc=ROC_FILE if drawn else None)
    return AuditResult(rows, sum(r["status"] == "error" for r in rows), len(items) - len(todo), rates(list(rows)))
