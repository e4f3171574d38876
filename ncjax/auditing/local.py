"""One model of an audit, scanned in this process by the scan pipeline into its folder."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path

import jax

from ncjax.auditing.config import ScanSettings
from ncjax.auditing.items import AuditItem
from ncjax.auditing.settings_record import settings_record
from ncjax.core.printable import one_line
from ncjax.data.convention import AUTO, auto_convention
from ncjax.data.images import load_images
from ncjax.data.preprocess import parse_described
from ncjax.errors import NCJaxError
from ncjax.models.loading import load_model
from ncjax.pipeline.model_scan import STATE_FILE, scan_model
from ncjax.pipeline.report import run_record
from ncjax.scan.compile_cache import enable_compile_cache
from ncjax.search.config import ScanConfig, device_preset

ATTEMPTS_FILE = "attempts.jsonl"  # one line per start of this model's scan: which host and process ran it


def scan_item(item: AuditItem, out: Path, *, data: str | None, settings: ScanSettings = ScanSettings()) -> dict:
    """Scan `item` into out/<name>/ (resuming its checkpoint if one is there) and return its row.

    A model that cannot be read or whose scan fails gets a row with status "error" and the message, one line;
    an interrupt propagates, leaving the checkpoint for a rerun.
    """
    folder = out / item.name
    folder.mkdir(parents=True, exist_ok=True)
    resume = (folder / STATE_FILE).exists()
    attempts = _record_attempt(folder, resume=resume)
    row = {**item_row(item, out, data), "host": socket.gethostname(), "attempts": attempts,
           "settings": settings_record(item, settings, data)}
    start = time.perf_counter()
    try:
        outcome = _scan(item, folder, item.data or data or "", settings, resume=resume)
    except NCJaxError as e:
        return {**row, "status": "error", "error": one_line(e, limit=500), "wall_s": time.perf_counter() - start}
    except Exception as e:  # a crash inside one model's scan must not end the audit
        return {**row, "status": "error", "error": one_line(f"{type(e).__name__}: {e}", limit=500),
                "wall_s": time.perf_counter() - start}
    return {**row, "status": "done", **_from_report(outcome.report), "wall_s": time.perf_counter() - start}


def _scan(item: AuditItem, folder: Path, data: str, settings: ScanSettings, *, resume: bool):
    if settings.compile_cache:
        enable_compile_cache(settings.compile_cache_dir)
    config = settings.config or ScanConfig.for_device()
    if item.preprocess and item.preprocess != AUTO:
        config = dataclasses.replace(config, preprocessing=parse_described(item.preprocess))
    preset = device_preset() if settings.config is None else "as configured"
    model = load_model(item.model, architecture=item.architecture, layout=item.layout)
    clean = load_images(data, model.input_shape, key=item.data_key)
    labelled_pixels = clean.pixels and clean.labels is not None
    auto = item.preprocess == AUTO or (item.preprocess is None and settings.preprocess_auto and labelled_pixels)
    run = run_record(seed=settings.seed, preset=preset, model_path=item.model, data_path=data, data_key=item.data_key)
    if auto:
        convention = auto_convention(model, clean, force=settings.force)
        config = dataclasses.replace(config, preprocessing=convention.best.preprocessing)
        run["preprocess_auto"] = convention.as_dict()
    return scan_model(model, clean.in_model_scale(config.preprocessing), clean.labels,
                      key=jax.random.key(settings.seed), config=config, decision=settings.decision,
                      scan_labels=settings.labels, from_pixels=clean.pixels,
                      force=settings.force, out=folder, resume=resume, overwrite=not resume,
                      prefix=settings.prefix, model_name=item.model, data_name=data, run=run,
                      max_hours=settings.max_hours)


def item_row(item: AuditItem, out: Path, data: str | None) -> dict:
    """What every row of `item` says, scanned or not: its name, files, truth and folder."""
    return {"name": item.name, "model": item.model, "data": item.data or data, "truth": item.truth,
            "target": item.target, "folder": os.fspath(out / item.name)}


def _record_attempt(folder: Path, *, resume: bool) -> int:
    """Append this start (host, process, whether it resumes a checkpoint) to the model's attempts file; returns
    how many starts it now lists. A rerun of the audit or a Ray retry after a dead worker each count as one."""
    with open(folder / ATTEMPTS_FILE, "a") as f:
        f.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                            "resumed": resume}) + "\n")
    return sum(1 for line in (folder / ATTEMPTS_FILE).read_text().splitlines() if line.strip())


def _from_report(report: dict) -> dict:
    score = report.get("score") or {}
    return {"verdict": report["verdict"], "labels": report["verdict_labels"], "score": score.get("score"),
            "anomaly_index": report["mad"]["anomaly_index"], "scan_s": report["timings"]["wall_s"],
            "verdict_line": report["verdict_line"]}
