"""Choose the verdict's score and thresholds on development scans, then check them on held-out ones.

    .venv/bin/python experiments/score.py        # writes experiments/score.md (no new scans)

Development scans: the 68 scans of experiments/verdicts.md (real and planted GTSRB models, issue 7; their real
models at seeds 0-2) and the dev half of the wider benchmark (experiments/wide_split.json). Test scans: the test
half of the wider benchmark (its split was committed before any of its models was scanned) and the real models'
scans at seeds 3 and 4 (made after the thresholds were chosen). Statistics are read from quantized norms, as the
verdict reads them. The source-specific check is measured on the wider benchmark (three smallest labels of every
model, six source classes each) and on the real backdoored model (experiments/results/real_sources.jsonl).
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
from ncjax.sources import SourceCheck  # noqa: E402
from ncjax.verdict import decide  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
TEST_SEEDS = (3, 4)  # real-model seeds scanned after the thresholds were chosen
MAX_FPR = 0.05
STATISTICS = {
    "ratio score (median / smallest norm)": lambda s: ratio_score(s["norms"]).score,
    "anomaly index (reference)": lambda s: mad_outliers(s["norms"]).anomaly_index,
    "gap score (issue 7)": lambda s: gap_score({"norms": s["norms"], "labels": list(range(len(s["norms"])))}),
}


# ------------------------------------------------------------------------------------------- scans


def _checks(row: dict) -> tuple[SourceCheck, ...]:
    return tuple(SourceCheck(c["label"], c["label_norm"], tuple(c["sources"]),
                             tuple(np.nan if v is None else v for v in c["norms"])) for c in row.get("sources", []))


def wide_scans(restarts: int) -> list[dict]:
    split = json.loads(wide_benchmark.SPLIT.read_text())
    return [{"set": split[r["name"]], "source": "wide", "name": r["name"], "group": r["group"], "arch": r["arch"],
             "data": r["data"], "targets": r["targets"], "all_to_all": r["all_to_all"], "norms": r[f"norms_{restarts}"],
             "labels": r["labels"], "checks": _checks(r) if restarts == 2 else (), "row": r}
            for r in wide_benchmark.rows()]


def old_scans() -> list[dict]:
    return [{"set": "test" if s["source"] == "real" and s["seed"] in TEST_SEEDS else "dev", "source": s["source"],
             "name": s["name"], "group": s["name"] if s["targets"] else "clean", "targets": s["targets"],
             "all_to_all": False, "norms": s["norms"], "labels": s["labels"], "checks": (), "row": s}
            for s in scans()]


def split(restarts: int) -> tuple[list[dict], list[dict]]:
    both = old_scans() + wide_scans(restarts)
    return [s for s in both if s["set"] == "dev"], [s for s in both if s["set"] == "test"]


# ------------------------------------------------------------------------------------------- rates


def verdict(scan: dict, min_ratio: float, max_spread: float | None = None):
    checks = scan["checks"] if max_spread is not None else ()
    return decide(scan["norms"], scan["labels"], min_ratio=min_ratio, sources=checks,
                  **({"max_spread": max_spread} if max_spread is not None else {}))


def rates(sel: list[dict], min_ratio: float, max_spread: float | None = None) -> dict:
    infected = [s for s in sel if s["targets"]]
    clean = [s for s in sel if not s["targets"] and not s["all_to_all"]]
    named = [(s, verdict(s, min_ratio, max_spread)) for s in sel]
    found = sum(v.infected and any(t in v.labels for t in s["targets"]) for s, v in named if s["targets"])
    false = sum(v.infected for s, v in named if not s["targets"] and not s["all_to_all"])
    extra = sum(len([x for x in v.labels if x not in s["targets"]]) for s, v in named if s["targets"] and v.infected)
    return {"found": found, "infected": len(infected), "false": false, "clean": len(clean), "extra": extra}


def choose_min_ratio(dev: list[dict]) -> float:
    """The smallest ratio threshold (0.1 grid from 2) with at most MAX_FPR of dev clean scans called infected."""
    for t in np.round(np.arange(2.0, 10.0, 0.1), 1):
        r = rates(dev, float(t))
        if r["false"] <= MAX_FPR * r["clean"]:
            return float(t)
    return 10.0


def candidate_rows(sel: list[dict], min_ratio: float) -> list[dict]:
    """Every source-checked label that the score names (ratio >= min_ratio): target or not, and its spread."""
    out = []
    for s in sel:
        score = ratio_score(s["norms"], s["labels"], min_ratio=min_ratio)
        for c in s["checks"]:
            if c.label in score.candidates:
                out.append({"scan": s["name"], "set": s["set"], "label": c.label, "target": c.label in s["targets"],
                            "spread": c.spread, "median_ratio": c.median_ratio})
    return out


def choose_max_spread(dev_candidates: list[dict]) -> float | None:
    """The smallest spread threshold that keeps every dev target; None when no dev non-target is above it."""
    targets = [c["spread"] for c in dev_candidates if c["target"]]
    others = [c["spread"] for c in dev_candidates if not c["target"]]
    if not targets or not others:
        return None
    t = float(np.ceil(max(targets) * 20) / 20)  # a 0.05 grid
    return t if any(o > t for o in others) else None


# ------------------------------------------------------------------------------------------ report


def _rate(r: dict) -> str:
    return (f"{r['found']}/{r['infected']} infected found, {r['false']}/{r['clean']} clean called infected, "
            f"{r['extra']} extra labels named")


def main() -> int:
    out = ["# The score and its thresholds (issue 14)", "", "Command: `.venv/bin/python experiments/score.py`. "
           + __doc__.split("\n\n")[1].replace("\n", " "), ""]
    chosen = {}
    for restarts in (1, 2):
        dev, test = split(restarts)
        t = choose_min_ratio(dev)
        chosen[restarts] = t
        out += [f"## {restarts} restart{'s' if restarts > 1 else ''} per label (wide benchmark; the 68 old scans "
                "have one)", "",
                f"min_ratio chosen on dev (smallest with <= {MAX_FPR:.0%} clean dev scans infected): **{t:g}**", "",
                "| split | at the chosen min_ratio | " + " | ".join(f"AUC {k}" for k in STATISTICS) + " |",
                "|---|---|" + "---|" * len(STATISTICS)]
        for name, sel in (("dev", dev), ("test", test)):
            pos = [s for s in sel if s["targets"]]
            neg = [s for s in sel if not s["targets"] and not s["all_to_all"]]
            aucs = [f"{roc_auc([f(s) for s in pos], [f(s) for s in neg]):.3f}" for f in STATISTICS.values()]
            out.append(f"| {name} ({len(sel)} scans) | {_rate(rates(sel, t))} | " + " | ".join(aucs) + " |")
        out.append("")
    print("\n".join(out))
    (ROOT / "experiments" / "score.md").write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
