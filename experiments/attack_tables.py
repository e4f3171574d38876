"""The tables of experiments/attack_benchmark.md, from results/attack_benchmark.jsonl and attack_split.json.

Neural Cleanse is read as ncjax reads it: ncjax.decide on the quantized norms (the ratio score, min_ratio 2.8); a
model is found when the verdict is INFECTED and names its target. The maximum-margin statistics of each kind of
start (random, clean images) are computed per model:
- p: MM-BD's, the largest margin against a Gamma fitted by moments to the other classes' margins, as the largest
  of K-1 null draws; small is suspicious;
- ratio: the largest margin over the median margin.
A model counts as backdoored only where training planted it (attack success of at least PLANTED).
    python experiments/attack_benchmark.py --summarize
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.stats import gamma

import ncjax

PLANTED = 0.5


def gamma_p(margins: np.ndarray) -> tuple[int, float]:
    """(the class with the largest margin, its p-value against a Gamma fitted to the others)."""
    top = int(np.argmax(margins))
    rest = np.delete(margins, top)
    shift = min(0.0, float(rest.min())) - 1e-6  # a Gamma needs positive values
    rest = rest - shift
    mean, var = float(rest.mean()), float(rest.var())
    cdf = float(gamma.cdf(margins[top] - shift, mean**2 / var, scale=var / mean))
    return top, 1.0 - cdf ** (len(margins) - 1)


def margin_stats(margins) -> dict:
    margins = np.asarray(margins, np.float64)
    top, p = gamma_p(margins)
    return {"top": top, "p": p, "ratio": float(margins[top] / np.median(margins))}


def nc_stats(row: dict) -> dict:
    verdict = ncjax.decide(np.asarray(row["norms"]), np.asarray(row["labels"]), reached=np.asarray(row["reached"]))
    score = verdict.score.score if verdict.score is not None else float("nan")
    top = verdict.score.top_label if verdict.score is not None else None
    return {"status": verdict.status, "labels": verdict.labels, "score": score, "top": top}


def is_planted(row: dict) -> bool:
    return row["target"] is not None and min(row["attack_success"]) >= PLANTED


def print_tables(rows: list[dict], split: dict[str, str]) -> None:
    models = []
    for row in rows:
        models.append({"row": row, "split": split[row["name"]], "nc": nc_stats(row),
                       "random": margin_stats(row["margins_random"]), "clean": margin_stats(row["margins_clean"])})
    _per_model(models)
    for kind in ("random", "clean"):
        for stat in ("p", "ratio"):
            _separation(models, kind, stat)
    _per_attack(models)


def _per_model(models) -> None:
    print("| model | split | accuracy | attack success | NC verdict | NC score (top) | MM random: p (top), ratio "
          "| MM clean: p (top), ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for m in models:
        r, nc = m["row"], m["nc"]
        verdict = nc["status"] + (f" {', '.join(map(str, nc['labels']))}" if nc["labels"] else "")
        mm = [f"{m[k]['p']:.3g} ({m[k]['top']}), {m[k]['ratio']:.2f}" for k in ("random", "clean")]
        print(f"| {r['name']} (target {r['target']}) | {m['split']} | {r['clean_accuracy']:.3f} | "
              f"{', '.join(f'{v:.2f}' for v in r['attack_success']) or '-'} | {verdict} | {nc['score']:.2f} "
              f"({nc['top']}) | {mm[0]} | {mm[1]} |")
    print()


def _separation(models, kind: str, stat: str) -> None:
    """How well one maximum-margin statistic separates planted from clean models, per split (ROC-AUC), with the
    target named (top class)."""
    sign = -1 if stat == "p" else 1
    for part in ("dev", "test"):
        clean = [sign * m[kind][stat] for m in models if m["split"] == part and m["row"]["target"] is None]
        planted = [sign * m[kind][stat] for m in models if m["split"] == part and is_planted(m["row"])]
        named = sum(m[kind]["top"] == m["row"]["target"] for m in models if m["split"] == part
                    and is_planted(m["row"]))
        auc = _auc(planted, clean)
        print(f"- MM {kind} starts, {stat}, {part}: AUC {auc:.3f}; top class is the target in {named}/{len(planted)}")
    print()


def _auc(positive, negative) -> float:
    if not positive or not negative:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def _per_attack(models) -> None:
    table = defaultdict(lambda: [0, 0, 0, 0])  # planted, NC found, not planted, clean called infected
    for m in models:
        r = m["row"]
        counts = table[r["attack"]]
        if r["target"] is None:
            counts[3] += m["nc"]["status"] == "infected"
            counts[0] += 1
        elif is_planted(r):
            counts[0] += 1
            counts[1] += m["nc"]["status"] == "infected" and r["target"] in m["nc"]["labels"]
        else:
            counts[2] += 1
    print("| attack type | models (planted) | Neural Cleanse: found at target | not planted | clean called infected |")
    print("|---|---|---|---|---|")
    for attack, (n, found, unplanted, false) in table.items():
        print(f"| {attack} | {n} | {found if attack != 'clean' else '-'} | {unplanted} | "
              f"{false if attack == 'clean' else '-'} |")
