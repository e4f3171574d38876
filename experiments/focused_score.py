"""The focused preset's thresholds, chosen again on development scans and checked on held-out ones.

    .venv/bin/python experiments/focused_score.py        # writes experiments/focused_score.md (no new scans)

Scans: results/wide_focused.jsonl (the wider planted benchmark through ScanConfig.focused(), split by
wide_split.json as before) and results/focused_search.jsonl (the real GTSRB models and the demo pair through the
pipeline with the focused preset; the real models' seeds 3 and 4 are test, as in experiments/score.py). The
split rules of experiments/score.py stand: min_ratio is the smallest on a 0.1 grid calling at most 5 % of the dev
clean scans infected; max_spread the smallest on a 0.05 grid keeping every dev target among the candidates.
Beside the verdicts: how often the warm-up would have frozen a planted target (it was not among the candidates),
the anchors' shrink, and the time.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wide_benchmark
from score import (
    TEST_SEEDS,
    _checks,
    candidate_rows,
    choose_max_spread,
    choose_min_ratio,
    learned_targets,
    old_scans,
    rates,
    verdict,
)
from score import wide_scans as fast_wide_scans

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
OUT = ROOT / "experiments" / "focused_score.md"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def wide_scans() -> list[dict]:
    split = json.loads(wide_benchmark.SPLIT.read_text())
    out = []
    for r in _lines(wide_benchmark.FOCUSED_RESULTS):
        targets = learned_targets(r)
        if not targets and r["targets"]:
            continue  # a backdoor the model did not learn is counted apart, as in experiments/score.py
        roles = dict(zip(r["focus_labels"], r["roles"]))
        norms = [np.inf if v is None else v for v in r["norms"]]
        out.append({"set": split[r["name"]], "source": "wide", "name": r["name"], "group": r["group"],
                    "targets": targets, "all_to_all": r["all_to_all"], "norms": norms, "labels": r["labels"],
                    "checks": _checks(r), "frozen_targets": [t for t in targets if roles[t] != "candidate"],
                    "shrink": r["shrink"], "seconds": r["scan_s"] + r["sources_s"], "row": r})
    return out


def real_scans() -> list[dict]:
    out = []
    for r in _lines(RESULTS / "focused_search.jsonl"):
        if r["preset"] != "focused":
            continue
        test = r["model"] not in ("demo", "demo-clean") and r["seed"] in TEST_SEEDS
        targets = [] if r["target"] is None else [r["target"]]
        roles = {int(k): v for k, v in (r["roles"] or {}).items()}
        out.append({"set": "test" if test else "dev", "source": "real", "name": f"{r['model']}:{r['seed']}",
                    "group": r["model"], "targets": targets, "all_to_all": False, "norms": r["norms"],
                    "labels": r["norm_labels"], "checks": _checks(r),
                    "frozen_targets": [t for t in targets if roles.get(t) != "candidate"], "shrink": r["shrink"],
                    "seconds": r["wall_s"], "row": r})
    return out


def fast_verdicts() -> dict[str, object]:
    """The same models' fast-preset verdicts (one restart, CPU, reference loss, cost from init_cost; with the
    source check where one ran), by this file's scan names."""
    out: dict[str, object] = {}
    for s in old_scans():
        r = s["row"]
        if s["source"] == "real" and (r.get("preset"), r.get("loss"), r.get("cost")) == ("fast", "reference", "init") \
                and not r.get("device", "cpu").startswith("gpu"):
            out[f"{s['name']}:{r['seed']}"] = verdict(s, 2.8, 2.3)
    for s in fast_wide_scans(1):
        out[s["name"]] = verdict(s, 2.8)
    return out


def _rate(r: dict) -> str:
    return (f"{r['found']}/{r['infected']} infected found, {r['false']}/{r['clean']} clean called infected, "
            f"{r['extra']} extra labels named")


def _suspicious(sel: list[dict], min_ratio: float, max_spread: float | None) -> str:
    clean = [s for s in sel if not s["targets"] and not s["all_to_all"]]
    n = sum(verdict(s, min_ratio, max_spread).status == "suspicious" for s in clean)
    return f"{n}/{len(clean)}"


def _table(scans: list[dict], t: float, m: float | None) -> list[str]:
    fast = fast_verdicts()
    lines = ["| scan | set | targets | verdict (focused) | score | fast preset: verdict, score | target frozen in the "
             "warm-up? | shrink | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for s in sorted(scans, key=lambda s: (s["set"], s["source"], s["name"])):
        v = verdict(s, t, m)
        named = ", ".join(map(str, v.labels))
        frozen = "-" if not s["targets"] else ("yes: " + ", ".join(map(str, s["frozen_targets"]))
                                               if s["frozen_targets"] else "no")
        f = fast.get(s["name"])
        before = "-" if f is None else f"{f.status} {', '.join(map(str, f.labels))}, {f.score.score:.2f}"
        lines.append(f"| {s['name']} | {s['set']} | {', '.join(map(str, s['targets'])) or '-'} | {v.status} {named} | "
                     f"{v.score.score:.2f} | {before} | {frozen} | {s['shrink']:.2f} | {s['seconds']:.0f} |")
    return lines


def main() -> int:
    scans = wide_scans() + real_scans()
    dev = [s for s in scans if s["set"] == "dev"]
    test = [s for s in scans if s["set"] == "test"]
    t = choose_min_ratio(dev, high=20.0)
    m = choose_max_spread([c for c in candidate_rows(dev, t) if c["candidate"]])
    infected = [s for s in scans if s["targets"]]
    frozen = [s for s in infected if s["frozen_targets"]]
    lines = [
        "# The focused preset's thresholds", "", "Command: `.venv/bin/python experiments/focused_score.py`. "
        + (__doc__ or "").split("\n\n", 2)[2].replace("\n", " "), "",
        f"Scans: {len(dev)} dev, {len(test)} test. min_ratio chosen on dev: **{t}**; max_spread chosen on dev: "
        f"**{m}** (None: no dev non-target candidate above the largest target spread, so the check sets nothing "
        "aside).", "",
        "| split | at min_ratio alone | with the source check | clean called SUSPICIOUS |", "|---|---|---|---|",
        f"| dev | {_rate(rates(dev, t))} | {_rate(rates(dev, t, m))} | {_suspicious(dev, t, m)} |",
        f"| test | {_rate(rates(test, t))} | {_rate(rates(test, t, m))} | {_suspicious(test, t, m)} |", "",
        f"At the fast preset's thresholds (2.8, 2.3): dev {_rate(rates(dev, 2.8, 2.3))}; test "
        f"{_rate(rates(test, 2.8, 2.3))}.", "",
        f"Planted targets the warm-up would have frozen (not among the candidates): {len(frozen)} of {len(infected)} "
        f"infected scans ({', '.join(s['name'] for s in frozen) or 'none'}).", "",
        *_table(scans, t, m), "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines[:16]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
