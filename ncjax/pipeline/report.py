"""report.json: what a scan found, in a versioned schema a CI pipeline can read."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ncjax.core.digest import array_sha256, file_sha256
from ncjax.core.version import __version__
from ncjax.models.safe_files import write_text_atomic
from ncjax.scan.result import ScanResult
from ncjax.verdict.decision import Verdict

SCHEMA = "ncjax.report/1"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def build_report(result: ScanResult, verdict: Verdict, *, model: str, data: str,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    outliers = verdict.mad
    gap = verdict.gap
    labels = []
    for i, label in enumerate(result.labels):
        labels.append({
            "label": int(label), "l1_norm": float(result.l1_norms[i]), "l1_norm_used": float(outliers.norms[i]),
            "anomaly_index": _plain(float(outliers.indices[i])), "attack_success": float(result.attack_success[i]),
            "reached_threshold": bool(result.reached_threshold[i]), "epochs": int(result.epochs[i]),
            "early_stopped": bool(result.early_stopped[i]), "final_cost": float(result.final_cost[i]),
            "ratio": None if verdict.score is None else _plain(float(verdict.score.ratios[i])),
        })
    score = verdict.score
    return {
        "schema": SCHEMA,
        "model": model,
        "data": data,
        "verdict": verdict.status,
        "verdict_line": verdict.line(),
        "verdict_rule": verdict.rule,
        "verdict_labels": list(verdict.labels),
        "gap": None if gap is None else {"flagged": list(gap.flagged), "gap": _plain(gap.gap), "min_gap": gap.min_gap},
        "score": None if score is None else {"score": _plain(score.score), "top_label": score.top_label,
                                             "min_ratio": score.min_ratio, "candidates": list(score.candidates),
                                             "median": score.median, "note": score.note},
        "source_check": [{"label": c.label, "label_norm": c.label_norm, "sources": list(c.sources),
                          "norms": [_plain(float(v)) for v in c.norms], "spread": _plain(c.spread),
                          "median_ratio": _plain(c.median_ratio), "reached_share": c.reached_share,
                          "set_aside": c.label in verdict.natural} for c in verdict.sources],
        "max_spread": verdict.max_spread if verdict.sources else None,
        "mad": {"median": outliers.median, "mad": outliers.mad, "anomaly_index": _plain(outliers.anomaly_index),
                "threshold": outliers.threshold, "flagged": list(outliers.flagged),
                "flagged_norms": list(outliers.flagged_norms), "note": outliers.note, "lines": outliers.lines()},
        "labels": labels,
        "config": _plain(result.config),
        "loss": result.loss,
        "timings": {"wall_s": result.wall_time_s, "compile_s": result.compile_time_s,
                    "compile_count": result.compile_count, "compile_background_s": result.compile_background_s,
                    "host_s": result.host_time_s,
                    "label_steps": result.label_steps, "slot_steps": result.slot_steps},
        "versions": {"ncjax": __version__, "jax": jax.__version__, "numpy": np.__version__,
                     "python": platform.python_version(), "device": str(jax.devices()[0].device_kind)},
        **(extra or {}),
    }


def run_record(*, seed: int, preset: str, model_path: str | os.PathLike | None = None,
               data_path: str | os.PathLike | None = None, data_key: str | None = None,
               command: Sequence[str] | None = None) -> dict[str, Any]:
    """What report.json's "run" says of how a scan was asked for: the seed and preset, the model and data files
    with their sha256 digests (a folder's over its files), the data key and the command line."""
    return {"seed": seed, "preset": preset,
            "model_path": None if model_path is None else os.fspath(model_path),
            "model_sha256": None if model_path is None else file_sha256(model_path),
            "data_path": None if data_path is None else os.fspath(data_path),
            "data_sha256": None if data_path is None else file_sha256(data_path),
            "data_key": data_key, "command": None if command is None else list(command)}


def inputs_digest(images: np.ndarray, labels: np.ndarray | None) -> dict[str, str | None]:
    """The sha256 of the images (in the model's input scale) and labels a scan read."""
    return {"images_sha256": array_sha256(np.asarray(images)),
            "labels_sha256": None if labels is None else array_sha256(np.asarray(labels))}


def write_json_atomic(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the report atomically: a reader never sees half of it. Numpy scalars are written as numbers."""
    write_text_atomic(json.dumps(data, indent=2, default=float) + "\n", path)
