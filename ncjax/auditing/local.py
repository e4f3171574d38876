"""One model of an audit, scanned in this process by the command line's own code into its folder."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Sequence

from ncjax.auditing.items import AuditItem

LOG_FILE = "scan.log"
ATTEMPTS_FILE = "attempts.jsonl"  # one line per start of this model's scan: which host and process ran it


def scan_item(item: AuditItem, out: Path, *, data: str | None, scan_args: Sequence[str] = ()) -> dict:
    """Scan `item` into out/<name>/ (resuming its checkpoint if one is there) and return its row.

    The scan's printed lines go to out/<name>/scan.log. A model that cannot be read or whose scan fails gets a
    row with status "error" and the message; an interrupt propagates, leaving the checkpoint for a rerun.
    """
    # Imported here: `import ncjax` (which exports audit) must not import ncjax.run, or `python -m ncjax.run`
    # warns that the module was imported before it ran.
    from ncjax.run import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED, STATE_FILE
    from ncjax.run import main as scan_main

    folder = out / item.name
    folder.mkdir(parents=True, exist_ok=True)
    resume = (folder / STATE_FILE).exists()
    # Values from a manifest go with "=": one that starts with "-" is then a value, never read as another flag.
    args = [f"--model={item.model}", f"--data={item.data or data or ''}", f"--out={folder}", "--no-progress",
            *([f"--data-key={item.data_key}"] if item.data_key else []),
            *([f"--preprocess={item.preprocess}"] if item.preprocess else []),
            *([f"--layout={item.layout}"] if item.layout else []),
            *(["--resume"] if resume else []), *scan_args]
    attempts = _record_attempt(folder, resume=resume)
    row = {**item_row(item, out, data), "host": socket.gethostname(), "attempts": attempts}
    start = time.perf_counter()
    with open(folder / LOG_FILE, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            code = scan_main(args)
        except SystemExit as e:  # the scan's argument parser refused a manifest's value; its line is in the log
            code = e.code if isinstance(e.code, int) else EXIT_BAD_INPUT
        except Exception as e:  # a crash inside one model's scan must not end the audit
            return {**row, "status": "error", "error": f"{type(e).__name__}: {e}"[:500],
                    "wall_s": time.perf_counter() - start}
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        raise KeyboardInterrupt("SIGTERM" if code == EXIT_TERMINATED else "")
    if code == EXIT_BAD_INPUT or not (folder / "report.json").exists():
        return {**row, "status": "error", "error": _last_error(folder / LOG_FILE),
                "wall_s": time.perf_counter() - start}
    return {**row, "status": "done", **_from_report(folder / "report.json"), "wall_s": time.perf_counter() - start}


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


def _last_error(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("error: ")]
    return lines[-1][len("error: "):] if lines else "the scan wrote no report"


def _from_report(path: Path) -> dict:
    report = json.loads(path.read_text())
    score = report.get("score") or {}
    return {"verdict": report["verdict"], "labels": report["verdict_labels"], "score": score.get("score"),
            "anomaly_index": report["mad"]["anomaly_index"], "scan_s": report["timings"]["wall_s"],
            "verdict_line": report["verdict_line"]}
