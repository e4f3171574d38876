"""audit.csv and audit.md from the rows: verdicts, scores, labels, times; with truth, the rates, ROC-AUC and the
ROC figure (audit_roc.png)."""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass

from ncjax.auditing.roc import roc_curve, save_roc
from ncjax.core.printable import one_line
from ncjax.models.safe_files import write_text_atomic

ROC_FILE = "audit_roc.png"

CSV_FIELDS = ("name", "model", "status", "verdict", "score", "labels", "truth", "target", "found", "scan_s",
              "wall_s", "error")


@dataclass(frozen=True)
class Rates:
    """Against the truth given: infected models called INFECTED, clean ones called INFECTED, and the score's AUC."""

    infected: int
    detected: int
    clean: int
    false_alarms: int
    auc: float | None  # ROC-AUC of the score, infected against clean (None without both kinds)


def found(row: dict) -> bool | None:
    """Whether an infected model's verdict named its target (None where there is no target or no verdict)."""
    if row.get("status") != "done" or row.get("target") is None or row.get("truth") != "infected":
        return None
    return row.get("verdict") == "infected" and row["target"] in row.get("labels", [])


def _by_truth(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The scanned rows with a truth: (infected ones, clean ones)."""
    done = [r for r in rows if r.get("status") == "done"]
    return [r for r in done if r.get("truth") == "infected"], [r for r in done if r.get("truth") == "clean"]


def rates(rows: list[dict]) -> Rates | None:
    infected, clean = _by_truth(rows)
    if not infected and not clean:
        return None
    return Rates(len(infected), sum(r["verdict"] == "infected" for r in infected), len(clean),
                 sum(r["verdict"] == "infected" for r in clean), auc([_score(r) for r in infected],
                                                                      [_score(r) for r in clean]))


def _score(row: dict) -> float:
    score = row.get("score")
    return float(score) if score is not None and math.isfinite(float(score)) else 0.0


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """The chance a positive outscores a negative (ties count half): the area under the ROC curve."""
    curve = roc_curve(positives, negatives)
    return None if curve is None else curve.auc


def write_roc(rows: list[dict], path: str | os.PathLike) -> bool:
    """The score's ROC figure, with the verdicts' own point; False (nothing written) without infected and clean
    models among the rows scanned."""
    infected, clean = _by_truth(rows)
    curve = roc_curve([_score(r) for r in infected], [_score(r) for r in clean])
    if curve is None:
        return False
    summary = rates(rows)
    assert summary is not None  # a curve needs infected and clean rows
    save_roc(path, curve, verdict_point=(summary.false_alarms / summary.clean, summary.detected / summary.infected),
             title=f"ROC of the score over {summary.infected} infected and {summary.clean} clean models: AUC "
                   f"{curve.auc:.3f}")
    return True


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:  # file names and messages escaped: a CSV is read in terminals as often as by programs
        text = {key: one_line(value) if isinstance(value, str) else value for key, value in row.items()}
        writer.writerow({**text, "labels": " ".join(map(str, row.get("labels") or [])), "found": found(row)})
    write_text_atomic(table.getvalue(), path)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return one_line(value, limit=300).replace("|", "/")


def write_markdown(rows: list[dict], path: str | os.PathLike, *, roc: str | None = None) -> None:
    """The table; `roc`, the ROC figure's file name beside it, where one was drawn."""
    lines = ["# Audit", "", f"{len(rows)} models: {sum(r['status'] == 'done' for r in rows)} scanned, "
             f"{sum(r['status'] == 'error' for r in rows)} failed.", ""]
    summary = rates(rows)
    if summary is not None:
        lines += [f"Against the truth given: {summary.detected} of {summary.infected} infected models called "
                  f"INFECTED, {summary.false_alarms} of {summary.clean} clean models called INFECTED; ROC-AUC of "
                  f"the score: {'n/a' if summary.auc is None else f'{summary.auc:.3f}'}.", ""]
        if roc:
            lines += [f"![ROC of the score]({roc})", ""]
    lines += ["| model | verdict | score | labels named | truth (target) | scan s | total s | error |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "" if r.get("target") is None else f" ({r['target']})"
        truth = "" if r.get("truth") is None else f"{r['truth']}{target}"
        named = " ".join(map(str, r.get("labels") or []))
        if named and r.get("verdict") == "inconclusive":
            named = f"never reached: {named}"
        lines.append(f"| {_cell(r['name'])} | {_cell(r.get('verdict'))} | {_cell(r.get('score'))} | "
                     f"{_cell(named)} | {truth} | {_cell(r.get('scan_s'))} | "
                     f"{_cell(r.get('wall_s'))} | {_cell(r.get('error'))} |")
    write_text_atomic("\n".join(lines) + "\n", path)
