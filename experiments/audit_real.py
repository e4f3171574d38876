"""The audit of issue 16's measurement: the four real models in ../shared/real and the embedded demo's two, with
their truth, scanned by ncjax.audit (CPU default settings, seed 0), locally or on a local Ray cluster.

    .venv/bin/python experiments/audit_real.py [--work DIR]         # local, one model after another
    .venv/bin/python experiments/audit_real.py --ray [--work DIR]   # --ray auto: a Ray cluster the audit starts

Writes experiments/audit_real.md (or audit_real_ray.md: the audit's table and rates, with the wall time and,
on Ray, the time outside the models' tasks) and experiments/results/audit_real.jsonl (audit_real_ray.jsonl).
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
    parser.add_argument("--ray", action="store_true", help="--ray auto: one task per model on a local Ray cluster")
    args = parser.parse_args()
    name = "audit_real_ray" if args.ray else "audit_real"
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = ncjax.audit([manifest(work)], out=work / name, config=ncjax.AuditConfig(ray="auto" if args.ray else None),
                         callback=lambda row: print(row["name"], row.get("verdict_line") or row.get("error"),
                                                    flush=True))
    wall = time.perf_counter() - start
    shutil.copy(work / name / "audit.jsonl", ROOT / "experiments" / "results" / f"{name}.jsonl")
    shutil.copy(work / name / "audit_roc.png", ROOT / "experiments" / "figures" / f"{name}_roc.png")
    text = (work / name / "audit.md").read_text().replace("](audit_roc.png)", f"](figures/{name}_roc.png)")
    in_models = sum(row.get("wall_s") or 0.0 for row in result.rows)
    own = (", starting the cluster, placing and collecting the tasks, each new worker importing ncjax"
           if args.ray else "")
    where = ("on a Ray cluster the audit started (`--ray auto`: 2 CPUs, one task per model asking for both)"
             if args.ray else "local, one model after another")
    (ROOT / "experiments" / f"{name}.md").write_text(
        text + f"\nWall time of the whole audit: {wall:.0f} s ({len(result.rows) - result.skipped} models scanned in "
        f"this run), {where}, on a 2-core AMD EPYC CPU, `ncjax.audit` defaults (the CPU's fast preset, source check "
        f"of the score's candidates), seed 0. The models' own time (each row's total s, summed): {in_models:.0f} s; "
        f"the rest, {wall - in_models:.1f} s, is the audit's own (summaries{own}).\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
