"""The tables of experiments/attack_benchmark.md, from results/attack_benchmark.jsonl and attack_split.json, with the
real GTSRB models' margins (results/real_margins.jsonl) as further clean and infected scans.

Neural Cleanse is read as ncjax reads it: ncjax.decide on the quantized norms (the ratio score, min_ratio 2.8); it
finds a model when the verdict is INFECTED and names the target. The maximum-margin statistic (ncjax.margin_score)
of the random starts finds a model when it flags the target. The combined verdict finds a model when either does;
a clean model is a false alarm when either calls it infected. A model counts as backdoored only where training
planted it (attack success of at least PLANTED).

max_p is chosen on the dev split: the largest on a grid whose combined false alarms on the dev clean scans (the
benchmark's, and the real clean models' margins at seeds 0-2, whose trigger verdicts are clean at every seed:
experiments/focused_score.md) stay at or below 5 %, and so do the margin statistic's alone on the demo's clean twin
(its trigger verdicts at these seeds were not measured: its rows count for the margin statistic only). The real
and demo models' seeds 3-4 are test scans.
    python experiments/attack_benchmark.py --summarize
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

import ncjax

PLANTED = 0.5
GRID = (1e-6, 1e-5, 1e-4, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
REAL_MARGINS = Path(__file__).parent / "results" / "real_margins.jsonl"


def nc_found(row: dict) -> tuple[bool, bool, float]:
    """(called infected, naming the target, the score) under ncjax's default verdict."""
    verdict = ncjax.decide(np.asarray(row["norms"]), np.asarray(row["labels"]), reached=np.asarray(row["reached"]))
    score = verdict.score.score if verdict.score is not None else float("nan")
    infected = verdict.status == "infected"
    return infected, infected and row["target"] in verdict.labels, score


def is_planted(row: dict) -> bool:
    return row["target"] is not None and min(row["attack_success"]) >= PLANTED


def _scans(rows: list[dict], split: dict[str, str]) -> list[dict]:
    scans = []
    for row in rows:
        if row["target"] is not None and not is_planted(row):
            continue
        infected, named, score = nc_found(row)
        margin = ncjax.margin_score(row["margins_random"])
        clean_starts = ncjax.margin_score(row["margins_clean"])
        scans.append({"nc_known": True, "name": row["name"], "attack": row["attack"], "split": split[row["name"]],
                      "target": row["target"], "nc_infected": infected, "nc_named": named, "nc_score": score,
                      "p": margin.p_value, "top": margin.top_label, "p_clean": clean_starts.p_value,
                      "top_clean": clean_starts.top_label, "gap": top_gap(row["margins_random"]), "row": row})
    if REAL_MARGINS.exists():
        for real in map(json.loads, REAL_MARGINS.read_text().splitlines()):
            infected = "backdoored" in real["model"]
            known = real["model"].startswith("real")
            source = "real" if known else "demo"
            scans.append({"nc_known": known, "name": f"{real['model']} (seed {real['seed']})",
                          "split": "dev" if real["seed"] < 3 else "test",
                          "attack": f"{source}: {'white 4x4 corner' if infected else 'clean'}",
                          "target": 33 if infected else None, "nc_infected": infected, "nc_named": infected,
                          "nc_score": float("nan"), "p": real["p_value"], "top": real["top"],
                          "gap": top_gap(real["margins"]), "row": None})
    return scans


def top_gap(margins) -> float:
    """The largest margin over the second largest: how far one label stands alone."""
    first, second = np.sort(np.asarray(margins, np.float64))[::-1][:2]
    return float(first / second) if second > 0 else float("inf")


def _auc(positive, negative) -> float:
    if not positive or not negative:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def _separation(scans) -> None:
    """ROC-AUC of two margin statistics per split, infected (named or not) against clean scans."""
    for part in ("dev", "test"):
        infected = [s for s in scans if s["split"] == part and s["target"] is not None]
        clean = [s for s in scans if s["split"] == part and s["target"] is None]
        strength = lambda s: -np.log10(max(s["p"], 1e-300))
        p_auc = _auc([strength(s) for s in infected], [strength(s) for s in clean])
        gap_auc = _auc([s["gap"] for s in infected], [s["gap"] for s in clean])
        scored = lambda group: [s["nc_score"] for s in group if s["row"] is not None]
        nc_auc = _auc(scored(infected), scored(clean))
        print(f"- {part}: ROC-AUC of the margin's p-value {p_auc:.3f}, of its top gap (largest / second margin) "
              f"{gap_auc:.3f}; of the trigger score on the benchmark's models {nc_auc:.3f}")
    print()


def _found(scan: dict, max_p: float, *, kind: str) -> bool | None:
    """Whether `kind` (nc, mm, combined) calls the scan infected (naming the target where it has one); None where
    the trigger verdict of the scan was not measured."""
    if kind != "mm" and not scan["nc_known"]:
        return None
    mm = scan["p"] < max_p and (scan["target"] is None or scan["top"] == scan["target"])
    nc = scan["nc_named"] if scan["target"] is not None else scan["nc_infected"]
    return {"nc": nc, "mm": mm, "combined": nc or mm}[kind]


def choose_max_p(scans: list[dict]) -> float:
    clean = [s for s in scans if s["split"] == "dev" and s["target"] is None]
    alarms = lambda p: sum(bool(_found(s, p, kind="combined" if s["nc_known"] else "mm")) for s in clean)
    allowed = [p for p in GRID if alarms(p) <= 0.05 * len(clean)]
    return max(allowed) if allowed else min(GRID)


def print_tables(rows: list[dict], split: dict[str, str]) -> None:
    scans = _scans(rows, split)
    max_p = choose_max_p(scans)
    _per_model([s for s in scans if s["row"] is not None])
    print(f"max_p chosen on dev: **{max_p:g}**\n")
    _per_attack(scans, max_p)
    _rates(scans, max_p)
    _separation(scans)


def _per_model(scans) -> None:
    print("| model | split | accuracy | attack success | NC score | NC finds | MM p (top), random starts | "
          "MM p (top), clean starts | MM top gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in scans:
        r = s["row"]
        if s["target"] is not None:
            finds = "yes" if s["nc_named"] else "no"
        else:
            finds = "FALSE ALARM" if s["nc_infected"] else "-"
        print(f"| {r['name']} (target {r['target']}) | {s['split']} | {r['clean_accuracy']:.3f} | "
              f"{', '.join(f'{v:.2f}' for v in r['attack_success']) or '-'} | {s['nc_score']:.2f} | {finds} | "
              f"{s['p']:.2g} ({s['top']}) | {s['p_clean']:.2g} ({s['top_clean']}) | {s['gap']:.2f} |")
    print()


def _per_attack(scans, max_p: float) -> None:
    table: dict[str, list[list]] = defaultdict(lambda: [[0, 0, 0, 0] for _ in range(2)])
    for s in scans:
        counts = table[s["attack"]][s["split"] == "test"]
        counts[0] += 1
        for i, kind in enumerate(("nc", "mm", "combined")):
            found = _found(s, max_p, kind=kind)
            counts[i + 1] = "-" if found is None else counts[i + 1] + found
    print(f"| attack type | scans (dev + test) | Neural Cleanse | maximum margin (p < {max_p:g}) | combined |")
    print("|---|---|---|---|---|")
    for attack in sorted(table, key=lambda a: (a.startswith(("real", "demo")), a == "clean", a)):
        dev, test = table[attack]
        cells = [f"{dev[i]} + {test[i]}" for i in range(1, 4)]
        what = "called infected" if "clean" in attack else "found at target"
        print(f"| {attack} ({what}) | {dev[0]} + {test[0]} | " + " | ".join(cells) + " |")
    print()


def _rates(scans, max_p: float) -> None:
    for part in ("dev", "test"):
        mine = [s for s in scans if s["split"] == part]
        infected = [s for s in mine if s["target"] is not None and s["nc_known"]]
        clean = [s for s in mine if s["target"] is None and s["nc_known"]]
        line = [f"{part} (the demo models apart):"]
        for kind in ("nc", "mm", "combined"):
            found = sum(_found(s, max_p, kind=kind) for s in infected)
            false = sum(_found(s, max_p, kind=kind) for s in clean)
            line.append(f"{kind} {found}/{len(infected)} found, {false}/{len(clean)} clean called infected;")
        print("- " + " ".join(line))
    print()
