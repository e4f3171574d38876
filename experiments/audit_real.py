"""The audit of issue 16's measurement: the four real models in ../shared/real and the embedded demo's two, with
their truth, scanned by ncjax.audit locally (CPU default settings, seed 0).

    .venv/bin/python experiments/audit_real.py [--work DIR]

Writes experiments/audit_real.md (the audit's table and rates, with the wall time) and
experiments/results/audit_real.jsonl (its rows).
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import ncjax
from ncjax import demo

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "real"


def manifest(work: Path) -> Path:
    images, labels = demo.demo_images()
    np.savez(work / "demo.npz", x=images, y=labels)
    gtsrb = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"
    rows = [
        (REAL / "models" / "gtsrb_backdoor_33_logits.h5", gtsrb, "x_roi", "infected", 33),
        (REAL / "models" / "gtsrb_clean_logits.h5", gtsrb, "x_roi", "clean", ""),
        (REAL / "models" / "gtsrb_clean_nabagata_keras224.h5", gtsrb, "x", "clean", ""),
        (REAL / "models" / "gtsrb_clean_abis47_keras260.h5", gtsrb, "x", "clean", ""),
        (demo.demo_model_path(infected=True), work / "demo.npz", "x", "infected", 33),
        (demo.demo_model_path(infected=False), work / "demo.npz", "x", "clean", ""),
    ]
    path = work / "manifest.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "data", "data_key", "truth", "target"])
        writer.writerows([[str(m), str(d), k, t, g] for m, d, k, t, g in rows])
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/ncjax_audit_real")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = ncjax.audit([manifest(work)], out=work / "audit",
                         callback=lambda row: print(row["name"], row.get("verdict_line") or row.get("error"), flush=True))
    wall = time.perf_counter() - start
    shutil.copy(work / "audit" / "audit.jsonl", ROOT / "experiments" / "results" / "audit_real.jsonl")
    text = (work / "audit" / "audit.md").read_text()
    (ROOT / "experiments" / "audit_real.md").write_text(
        text + f"\nWall time of the whole audit: {wall:.0f} s ({len(result.rows) - result.skipped} models scanned in "
        "this run), local, one model after another, on a 2-core AMD EPYC CPU, `ncjax.audit` defaults "
        "(the CPU's fast preset, source check of the score's candidates), seed 0.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
