"""Choose the verdict's score and threshold on development scans, then check them on held-out ones.

    .venv/bin/python experiments/score.py        # writes experiments/score.md (no new scans)

Development scans: the 68 scans of experiments/verdicts.md (real and planted GTSRB models, issue 7) and the
dev half of the wider benchmark (wide_split.json). Test scans: the test half of the wider benchmark (its split
was committed before any of its models was scanned) and the real models' scans at seeds 3 and 4 (made after
the threshold was chosen). Statistics are read from quantized norms, as the verdict reads them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from planted_sweep import roc_auc  # noqa: E402
from verdicts import gap_score, scans  # noqa: E402
import wide_benchmark  # noqa: E402

from ncjax.outlier import mad_outliers  # noqa: E402
from ncjax.score import ratio_score  # noqa: E402
from ncjax.verdict import decide  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
TEST_SEEDS = (3, 4)  # real-model seeds scanned after the threshold was chosen
STATISTICS = {
    "ratio score (median / smallest norm)": lambda s: ratio_score(s["norms"]).score,
    "anomaly index (reference)": lambda s: mad_outliers(s["norms"]).anomaly_index,
    "gap score (issue 7)": lambda s: gap_score({"norms": s["norms"], "labels": list(range(len(s["norms"])))}),
}


def wide_scans(restarts: int = 1) -> list[dict]:
    split = json.loads(wide_benchmark.SPLIT.read_text())
    out = []
    for r in wide_benchmark.rows():
        out.append({"set": split[r["name"]], "source": "wide", "name": r["name"], "group": r["group"],
                    "arch": r["arch"], "data": r["data"], "targets": r["targets"], "all_to_all": r["all_to_all"],
                    "norms": r[f"norms_{restarts}"], "labels": r["labels"], "row": r})
    return out


def old_scans() -> list[dict]:
    out = []
    for s in scans():
        test = s["source"] == "real" and s["seed"] in TEST_SEEDS
        out.append({"set": "test" if test else "dev", "source": s["source"], "name": s["name"],
                    "group": s["name"] if s["targets"] else "clean", "targets": s["targets"], "all_to_all": False,
                    "norms": s["norms"], "labels": s["labels"], "row": s})
    return out


def rates(sel: list[dict], min_ratio: float) -> dict:
    infected = [s for s in sel if s["targets"]]
    clean = [s for s in sel if not s["targets"] and not s["all_to_all"]]
    named = [(s, decide(s["norms"], s["labels"], min_ratio=min_ratio)) for s in sel]
    detected = sum(v.infected and any(t in v.labels for t in s["targets"]) for s, v in named if s["targets"])
    false = sum(v.infected for s, v in named if not s["targets"] and not s["all_to_all"])
    extra = sum(len([lbl for lbl in v.labels if lbl not in s["targets"]]) for s, v in named
                if s["targets"] and v.infected)
    return {"detected": detected, "infected": len(infected), "false": false, "clean": len(clean), "extra": extra}


def choose_threshold(dev: list[dict], max_fpr: float = 0.05) -> float:
    """The smallest ratio threshold, on a 0.1 grid from 2, whose false-positive rate on dev is <= max_fpr."""
    for t in np.arange(2.0, 10.0, 0.1):
        r = rates(dev, float(t))
        if r["false"] <= max_fpr * r["clean"]:
            return round(float(t), 1)
    return 10.0


def main() -> int:
    dev = [s for s in old_scans() + wide_scans() if s["set"] == "dev"]
    test = [s for s in old_scans() + wide_scans() if s["set"] == "test"]
    t = choose_threshold(dev)
    print(f"threshold chosen on dev: {t}")
    for name, sel in (("dev", dev), ("test", test)):
        r = rates(sel, t)
        print(name, r)
        pos = [s for s in sel if s["targets"]]
        neg = [s for s in sel if not s["targets"] and not s["all_to_all"]]
        for stat, f in STATISTICS.items():
            print(f"  {stat}: AUC {roc_auc([f(s) for s in pos], [f(s) for s in neg]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
