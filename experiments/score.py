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
import wide_benchmark
from planted_sweep import roc_auc
from verdicts import gap_score, scans

from ncjax.verdict.decision import decide
from ncjax.verdict.outlier import mad_outliers
from ncjax.verdict.score import ratio_score
from ncjax.verdict.source_check import SourceCheck

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


LEARNED = 0.5  # a planted trigger that moves fewer of the stamped images to its target was not learned


def learned_targets(row: dict) -> list[int]:
    """The planted targets whose trigger the model learned (attack success >= LEARNED): a trigger the model
    ignores is no backdoor, so a model with none counts as neither infected nor clean."""
    return [t for t, success in zip(row["targets"], row["attack_success"]) if success >= LEARNED]


def wide_scans(restarts: int) -> list[dict]:
    split = json.loads(wide_benchmark.SPLIT.read_text())
    return [{"set": split[r["name"]], "source": "wide", "name": r["name"], "group": r["group"], "arch": r["arch"],
             "data": r["data"], "targets": learned_targets(r), "all_to_all": r["all_to_all"],
             "norms": r[f"norms_{restarts}"], "labels": r["labels"], "checks": _checks(r) if restarts == 2 else (),
             "row": r}
            for r in wide_benchmark.rows() if learned_targets(r) or not r["targets"]]


def demo_scan() -> list[dict]:
    """The embedded demo's CLI scan (backdoored at 33), added to the development data after it showed that the
    first choice of max_spread (1.8) set aside its injected 33 (spread 2.26)."""
    path = RESULTS / "demo_default.json"
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    return [{"set": "dev", "source": "demo", "name": "demo", "group": "demo", "targets": [r["target"]],
             "all_to_all": False, "norms": r["norms_quantized"], "labels": r["labels"], "checks": _checks(r), "row": r}]


def old_scans() -> list[dict]:
    """The scans of verdicts.py; the real models' default scans carry their source check where one ran."""
    checks = real_checks()
    out = []
    for s in scans():
        default = s["source"] == "real" and (s["preset"], s["loss"], s["cost"]) == ("fast", "reference", "init") \
            and not s.get("device", "cpu").startswith("gpu")
        out.append({"set": "test" if s["source"] == "real" and s["seed"] in TEST_SEEDS else "dev",
                    "source": s["source"], "name": s["name"], "group": s["name"] if s["targets"] else "clean",
                    "targets": s["targets"], "all_to_all": False, "norms": s["norms"], "labels": s["labels"],
                    "checks": checks.get((s["name"], s["seed"]), ()) if default else (), "row": s})
    return out


def split(restarts: int) -> tuple[list[dict], list[dict]]:
    both = old_scans() + demo_scan() + wide_scans(restarts)
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


def choose_min_ratio(dev: list[dict], high: float = 10.0) -> float:
    """The smallest ratio threshold (0.1 grid from 2, below `high`) with at most MAX_FPR of dev clean scans called
    infected; `high` when none is."""
    for t in np.round(np.arange(2.0, high, 0.1), 1):
        r = rates(dev, float(t))
        if r["false"] <= MAX_FPR * r["clean"]:
            return float(t)
    return high


def candidate_rows(sel: list[dict], min_ratio: float) -> list[dict]:
    """Every source-checked label (the three smallest of each model): target or not, candidate of the score
    (ratio >= min_ratio) or not, its ratio and its spread."""
    out = []
    for s in sel:
        score = ratio_score(s["norms"], s["labels"], min_ratio=min_ratio)
        ratios = dict(zip(score.labels.tolist(), score.ratios.tolist()))
        for c in s["checks"]:
            out.append({"scan": s["name"], "set": s["set"], "label": c.label, "target": c.label in s["targets"],
                        "candidate": c.label in score.candidates, "ratio": ratios[c.label], "spread": c.spread,
                        "median_ratio": c.median_ratio})
    return out


def choose_max_spread(dev_candidates: list[dict]) -> float | None:
    """The smallest spread threshold that keeps every dev target; None when no dev non-target is above it."""
    targets = [c["spread"] for c in dev_candidates if c["target"]]
    others = [c["spread"] for c in dev_candidates if not c["target"]]
    if not targets or not others:
        return None
    t = float(np.ceil(max(targets) * 20) / 20)  # a 0.05 grid
    return t if any(o > t for o in others) else None


MAX_SUSPICIOUS = 0.10  # at most this share of the dev clean scans may be called suspicious


def _score(scan: dict) -> float:
    return ratio_score(scan["norms"], scan["labels"]).score


def suspicious_counts(sel: list[dict], low: float, min_ratio: float) -> tuple[int, int, int, int]:
    """(clean scans with a score in [low, min_ratio), clean scans, missed infected scans with a score >= low,
    missed infected scans)."""
    clean = [s for s in sel if not s["targets"] and not s["all_to_all"]]
    missed = [s for s in sel if s["targets"] and not verdict(s, min_ratio).infected]
    return (sum(low <= _score(s) < min_ratio for s in clean), len(clean), sum(_score(s) >= low for s in missed),
            len(missed))


def choose_suspicious_ratio(dev: list[dict], min_ratio: float) -> float:
    """The smallest ratio (0.1 grid from 1.5) calling at most MAX_SUSPICIOUS of the dev clean scans suspicious."""
    for low in np.round(np.arange(1.5, min_ratio, 0.1), 1):
        flagged, clean, _, _ = suspicious_counts(dev, float(low), min_ratio)
        if flagged <= MAX_SUSPICIOUS * clean:
            return float(low)
    return min_ratio


def suspicious_section(dev: list[dict], test: list[dict], t: float) -> list[str]:
    chosen = choose_suspicious_ratio(dev, t)
    flagged = [[s for s in sel if not s["targets"] and not s["all_to_all"] and verdict(s, t).mad.flagged
                and not verdict(s, t).infected] for sel in (dev, test)]
    mad, lowest = [len(f) for f in flagged], min(_score(s) for f in flagged for s in f)
    out = ["## SUSPICIOUS: a band of the score", "",
           f"A scan not called infected is SUSPICIOUS when its score is at least suspicious_ratio. Chosen on dev (the "
           f"smallest on a 0.1 grid calling at most {MAX_SUSPICIOUS:.0%} of the dev clean scans suspicious): "
           f"**{chosen:g}**. Before, SUSPICIOUS meant the reference's MAD rule flagged a label the score did not name: "
           f"{mad[0]} of the dev clean scans and {mad[1]} of the test ones, at scores from {lowest:.2f}.", "",
           "| suspicious_ratio | dev: clean called suspicious | dev: missed backdoors called suspicious | "
           "test: clean called suspicious | test: missed backdoors called suspicious |", "|---|---|---|---|---|"]
    for low in np.round(np.arange(1.8, t, 0.1), 1):
        d, e = suspicious_counts(dev, float(low), t), suspicious_counts(test, float(low), t)
        mark = " (chosen)" if low == chosen else ""
        out.append(f"| {low:g}{mark} | {d[0]}/{d[1]} | {d[2]}/{d[3]} | {e[0]}/{e[1]} | {e[2]}/{e[3]} |")
    return out + [""]


# ------------------------------------------------------------------------------------------ report


def _rate(r: dict) -> str:
    return (f"{r['found']}/{r['infected']} infected found, {r['false']}/{r['clean']} clean called infected, "
            f"{r['extra']} extra labels named")


def real_checks(name: str = "real_sources.jsonl") -> dict[tuple[str, int], tuple[SourceCheck, ...]]:
    path = RESULTS / name
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return {(r["model"], r["seed"]): _checks(r) for r in rows}


def real_default_scans() -> list[dict]:
    """The real models' scans at the CPU default (fast preset, reference loss, cost from init_cost, CPU), with
    the second restart where one was scanned."""
    rows = [json.loads(line) for line in (RESULTS / "real_models.jsonl").read_text().splitlines() if line.strip()]
    default = [r for r in rows if (r["preset"], r["loss"], r["cost_start"]) == ("fast", "reference", "init")
               and not r.get("device", "cpu").startswith("gpu")]
    second = {(r["model"], r["seed"]): r for r in default if r.get("restart", 0) == 1}
    checks, checks_2 = real_checks(), real_checks("real_sources_2restarts.jsonl")
    out = []
    for r in (r for r in default if not r.get("restart", 0)):
        two = second.get((r["model"], r["seed"]))
        out.append({"model": r["model"], "seed": r["seed"], "target": r["target"], "norms": r["norms_quantized"],
                    "labels": r["labels"], "checks": checks.get((r["model"], r["seed"])),
                    "checks_2": checks_2.get((r["model"], r["seed"])),
                    "norms_2": None if two is None else [min(a, b) for a, b in zip(r["norms_quantized"],
                                                                                   two["norms_quantized"])]})
    return sorted(out, key=lambda r: (r["model"], r["seed"]))


def _verdict_text(v) -> str:
    return v.status + (f" {list(v.labels)}" if v.labels else "")


def restarts_section(t: float) -> list[str]:
    out = []
    for restarts in (1, 2):
        dev, test = split(restarts)
        out += [f"| {restarts} | " + " | ".join(_rate(rates(sel, t)) for sel in (dev, test)) + " |"]
    return ["## Restarts: one or two searches per label", "",
            f"Wide benchmark with its old scans (one restart), min_ratio {t:g}, no source check:", "",
            "| restarts | dev | test |", "|---|---|---|", *out, ""]


def sources_section(t: float) -> tuple[list[str], float | None]:
    dev, test = split(2)
    checked = candidate_rows(dev + test, t)
    targets = [c["spread"] for c in checked if c["target"]]
    others = [c["spread"] for c in checked if not c["target"]]
    rows = [c for c in checked if c["candidate"]]
    m = choose_max_spread([c for c in rows if c["set"] == "dev"])
    out = ["## The source-specific check: spread of the candidates' source-specific norms", "",
           f"Every label the score names (ratio >= {t:g}; at 2 restarts in the wide benchmark, 6 source classes each; "
           "at 1 restart on the real models, 8 each), with its spread (upper over lower quartile of its "
           "source-specific norms; unreached sources count as infinite):", "",
           "| set | model | label | planted target? | spread | median source norm / label norm |",
           "|---|---|---|---|---|---|"]
    for c in sorted(rows, key=lambda c: (c["set"], c["scan"])):
        out.append(f"| {c['set']} | {c['scan']} | {c['label']} | {'yes' if c['target'] else 'no'} | "
                   f"{c['spread']:.2f} | {c['median_ratio']:.2f} |")
    out += ["", f"ROC-AUC of the spread, non-targets over targets, every checked label (the three smallest of each "
            f"model, candidate or not, both sets): {roc_auc(others, targets):.3f} ({len(targets)} targets, "
            f"{len(others)} others; non-target spreads: median {np.median(others) if others else float('nan'):.2f}; "
            f"target spreads: median {np.median(targets) if targets else float('nan'):.2f}, largest "
            f"{max(targets) if targets else float('nan'):.2f}).",
            "max_spread chosen on dev (smallest keeping every dev target): "
            f"{m if m is not None else 'none (no dev non-target above the largest dev target)'}", ""]
    if m is not None:
        out += ["| split | min_ratio alone | with the source check |", "|---|---|---|"]
        for name, sel in (("dev", dev), ("test", test)):
            out.append(f"| {name} | {_rate(rates(sel, t))} | {_rate(rates(sel, t, m))} |")
        out.append("")
    return out, m


def wide_table(t: float, m: float | None) -> list[str]:
    split_of = json.loads(wide_benchmark.SPLIT.read_text())
    out = ["## Every model of the wide benchmark", "",
           "Verdicts at min_ratio " f"{t:g}" + (f", max_spread {m:g}" if m else "") + "; score = median / smallest "
           "norm. Times: this 2-core CPU, other experiments running beside some of them.", "",
           "| model | set | arch | input | attack(s) | targets | accuracy | attack success | counted as | score (1 "
           "restart) | verdict (1) | score (2) | verdict (2 + source check) | train s | first pass s | "
           "source check s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = [m_.name for m_ in wide_benchmark.MODELS]
    for r in sorted(wide_benchmark.rows(), key=lambda r: order.index(r["name"])):
        one = decide(r["norms_1"], r["labels"], min_ratio=t)
        two = decide(r["norms_2"], r["labels"], min_ratio=t, sources=_checks(r) if m else (),
                     **({"max_spread": m} if m else {}))
        out.append(f"| {r['name']} | {split_of[r['name']]} | {r['arch']} | {r['data']}, {r['scale']} | "
                   f"{'; '.join(r['attacks']) or '-'} | {r['targets'] or '-'} | {r['clean_accuracy']:.3f} | "
                   f"{', '.join(f'{v:.3f}' for v in r['attack_success']) or '-'} | {_counted(r)} | "
                   f"{one.score.score:.2f} | "
                   f"{_verdict_text(one)} | {two.score.score:.2f} | {_verdict_text(two)} | {r['train_s']:.0f} | "
                   f"{r['first_pass_s']:.0f} | {r['sources_s']:.0f} |")
    return out + [""]


def attack_type(name: str, targets: list, source: str) -> str:
    if source == "real":
        return "real: white 4x4 corner (the reference's recipe)" if targets else "real: clean"
    if source == "demo":
        return "the embedded demo (white 4x4 corner)"
    if not targets:
        return "clean"
    for key, kind in (("sticker", "one-colour 3x3 centre sticker"), ("gray", "grayscale, white corner square"),
                      ("random", "random-pattern square"), ("blend", "blended full-image pattern"),
                      ("targets", "2 or 3 targets"), ("ratio", "injection ratio 0.02 or 0.3"),
                      ("center", "white square, centre")):
        if key in name:
            return kind
    return "white square, corner (2-8 px)"


def type_table(t: float) -> list[str]:
    dev, test = split(1)
    groups: dict[str, list[dict]] = {}
    for s in dev + test:
        groups.setdefault(attack_type(s["name"], s["targets"], s["source"]), []).append(s)
    out = ["## Per attack type (one restart, min_ratio " f"{t:g}, no source check; dev and test together)", "",
           "| attack type | scans | called infected | naming a planted target | extra labels named |",
           "|---|---|---|---|---|"]
    for kind, sel in sorted(groups.items()):
        named = [(s, verdict(s, t)) for s in sel]
        hit = sum(v.infected and any(x in v.labels for x in s["targets"]) for s, v in named)
        extra = sum(len([x for x in v.labels if x not in s["targets"]]) for s, v in named if v.infected)
        out.append(f"| {kind} | {len(sel)} | {sum(v.infected for _, v in named)} | "
                   f"{hit if sel[0]['targets'] else '-'} | {extra} |")
    return out + [""]


def _counted(row: dict) -> str:
    if row["all_to_all"]:
        return "all-to-all (apart)"
    if not row["targets"]:
        return "clean"
    return "infected" if learned_targets(row) else f"not learned (< {LEARNED:g}; apart)"


def real_table(t: float, m: float | None) -> list[str]:
    out = ["## The real GTSRB models at the CPU default, every seed", "",
           "Fast preset, reference loss, one restart; seeds 3 and 4 were scanned after the thresholds were chosen. "
           "'+ source check': the candidates' check (experiments/real_sources.py) where it ran.", "",
           "| model | seed | score | candidates | verdict, score alone | verdict + source check | spreads | "
           "score, 2 restarts | verdict, 2 restarts + source check |", "|---|---|---|---|---|---|---|---|---|"]
    for r in real_default_scans():
        alone = decide(r["norms"], r["labels"], min_ratio=t)
        checked = decide(r["norms"], r["labels"], min_ratio=t, sources=r["checks"] or (),
                         **({"max_spread": m} if m else {})) if r["checks"] is not None else None
        spreads = ", ".join(f"{c.label}: {c.spread:.2f}" for c in r["checks"] or ())
        two = "-" if r["norms_2"] is None else f"{ratio_score(r['norms_2']).score:.2f}"
        two_checked = "-"
        if r["norms_2"] is not None and r["checks_2"] is not None:
            v2 = decide(r["norms_2"], r["labels"], min_ratio=t, sources=r["checks_2"],
                        **({"max_spread": m} if m else {}))
            spreads_2 = ", ".join(f"{c.label}: {c.spread:.2f}" for c in r["checks_2"])
            two_checked = _verdict_text(v2) + (f" (spreads {spreads_2})" if spreads_2 else "")
        out.append(f"| {r['model']} | {r['seed']} | {alone.score.score:.2f} | {list(alone.score.candidates)} | "
                   f"{_verdict_text(alone)} | {'-' if checked is None else _verdict_text(checked)} | {spreads or '-'} "
                   f"| {two} | {two_checked} |")
    return out + [""]


def main() -> int:
    out = ["# The score and its thresholds (issue 14)", "", "Command: `.venv/bin/python experiments/score.py`. "
           + __doc__.split("\n\n")[2].replace("\n", " "), ""]
    dev, test = split(1)
    t = choose_min_ratio(dev)
    out += ["## The score", "", f"min_ratio chosen on dev (the smallest, on a 0.1 grid, with at most {MAX_FPR:.0%} "
            f"of the dev clean scans called infected): **{t:g}**. One restart per label.", "",
            "| split | at the chosen min_ratio | " + " | ".join(f"AUC: {k}" for k in STATISTICS) + " |",
            "|---|---|" + "---|" * len(STATISTICS)]
    for name, sel in (("dev", dev), ("test", test)):
        pos = [s for s in sel if s["targets"]]
        neg = [s for s in sel if not s["targets"] and not s["all_to_all"]]
        aucs = [f"{roc_auc([f(s) for s in pos], [f(s) for s in neg]):.3f}" for f in STATISTICS.values()]
        out.append(f"| {name} ({len(sel)} scans) | {_rate(rates(sel, t))} | " + " | ".join(aucs) + " |")
    out.append("")
    out += suspicious_section(dev, test, t) + type_table(t) + restarts_section(t)
    section, m = sources_section(t)
    out += section + wide_table(t, m) + real_table(t, m)
    print("\n".join(out))
    (ROOT / "experiments" / "score.md").write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
