"""Whole scans through other input conventions: the real GTSRB model backdoored at 33 (trained on raw 0..255
pixels), composed with the inverse of a convention, becomes a model that takes that convention's inputs exactly
(model_c(x) = model(c.to_raw(x))). Each is scanned as `ncjax scan` scans it by default: uint8 pixels with their
labels, the convention chosen by `--preprocess auto`, the pre-flight, the CPU default (focused) preset, key 0.

    python experiments/convention_scans.py        # about 4-5 minutes a scan on a 2-core CPU; needs ../shared/real

A faithful path gives every wrapped model the raw model's verdict (INFECTED naming 33); the norms may differ a
little, as float rounding differs. Writes results/convention_scans.jsonl.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import jax

import ncjax
from ncjax.data.preprocess import Preprocessing

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
OUT = Path(__file__).parent / "results" / "convention_scans.jsonl"
CONVENTIONS = [Preprocessing(mode="raw"), Preprocessing(mode="mnist"), Preprocessing(mode="inception"),
               Preprocessing(mode="torch"), Preprocessing(mode="mnist", channel_order="bgr")]


def wrapped(model: ncjax.Classifier, convention: Preprocessing) -> ncjax.Classifier:
    """`model` (raw pixels in) as a model that takes `convention`'s inputs."""
    apply = lambda params, x: model.apply(params, convention.to_raw(x))
    return dataclasses.replace(model, apply=apply)


def main() -> int:
    model = ncjax.load_model(REAL / "models" / "gtsrb_backdoor_33_logits.h5")
    clean = ncjax.load_images(REAL / "gtsrb" / "gtsrb_test_32x32_small_20perclass.npz", model.input_shape)
    rows = []
    for convention in CONVENTIONS:
        target = wrapped(model, convention)
        start = time.perf_counter()
        choice = ncjax.auto_convention(target, clean)
        chosen = choice.best.preprocessing
        outcome = ncjax.scan_model(target, clean.in_model_scale(chosen), clean.labels, key=jax.random.key(0),
                                   config=ncjax.ScanConfig.for_device(preprocessing=chosen), from_pixels=True)
        verdict = outcome.verdict
        rows.append({"convention": convention.describe(), "chosen": chosen.describe(),
                     "runner_up": choice.runner_up.preprocessing.describe(), "accuracy": choice.best.accuracy,
                     "preflight_accuracy": outcome.preflight.given.accuracy, "verdict": verdict.status,
                     "labels": list(verdict.labels), "line": verdict.line(),
                     "score": None if verdict.score is None else verdict.score.score,
                     "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), flush=True)
        OUT.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
