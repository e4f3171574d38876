"""Every (source, target) pair of 10-label grayscale models: source-specific backdoors and clean models.

    .venv/bin/python experiments/pair_benchmark.py --write-split      # once, before any scan
    .venv/bin/python experiments/pair_benchmark.py [--only NAMES] [--budget-s S]
    .venv/bin/python experiments/pair_benchmark.py --summarize        # tables -> pair_benchmark.md

Each model (experiments/wide_benchmark.py's recipes: 28x28 gray synth signs, 10 classes, 5,000 training images,
4 epochs) gets the pair scan of ncjax.scan.pairs (all 90 pairs, one start each, ScanConfig.pair_search()),
on 1,000 held-out clean images. Its (source, target) norm matrix goes to results/pair_benchmark.jsonl, a line per
model as it ends (a rerun skips finished models); the pair statistics are computed from the matrix afterwards, so
they can be chosen on the dev models without scanning again. The source-specific models are new; the clean ones
are wide_benchmark's gray clean models, in their split there. The split is written before any scan.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax.scan.pairs import scan_pairs
from ncjax.verdict.pairs import pair_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wide_benchmark as wb  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results" / "pair_benchmark.jsonl"
SPLIT = ROOT / "experiments" / "pair_split.json"
REPORT = ROOT / "experiments" / "pair_benchmark.md"
LEARNED = 0.5  # a trigger moving fewer of its sources' stamped images was not learned: neither infected nor clean
RATE_LOW, RATE_HIGH = 0.1 / 1.1, 0.3  # share of training images stamped (only the sources' relabelled)


def _models() -> list[wb.Recipe]:
    def sq(target, sources, **k):
        return wb.Attack("square", target, sources=sources, **k)

    infected = [
        wb.Recipe("src1-vgg-high", "vgg", "gray", "unit", 300, (sq(7, (3,)),), RATE_HIGH),
        wb.Recipe("src1-resnet-low", "resnet", "gray", "unit", 301, (sq(2, (5,), position="top-left"),), RATE_LOW),
        wb.Recipe("src2-reference-high", "reference", "gray", "unit", 302,
                  (sq(0, (4, 8), size=3, position="center"),), RATE_HIGH),
        wb.Recipe("src2-vgg-low", "vgg", "gray", "unit", 303, (sq(9, (1, 6), color="random"),), RATE_LOW),
        wb.Recipe("src1-reference-raw-low", "reference", "gray", "raw", 304,
                  (sq(4, (9,), size=3, position="bottom-left"),), RATE_LOW),
        wb.Recipe("src2-resnet-high", "resnet", "gray", "unit", 305, (sq(6, (0, 2), position="top-right"),),
                  RATE_HIGH),
    ]
    clean = [m for m in wb.MODELS if not m.attacks and m.data == "gray"]
    return infected + clean


MODELS = _models()


def write_split() -> None:
    """The new models alternate dev/test in MODELS order; the clean ones keep wide_benchmark's split."""
    wide = json.loads(wb.SPLIT.read_text())
    split, seen = {}, 0
    for recipe in MODELS:
        if recipe.attacks:
            split[recipe.name] = "dev" if seen % 2 == 0 else "test"
            seen += 1
        else:
            split[recipe.name] = wide[recipe.name]
    SPLIT.write_text(json.dumps(split, indent=1) + "\n")


def measure(recipe: wb.Recipe) -> dict:
    model, accuracy, success, images, y_scan, preprocessing, train_s = wb._trained(recipe)
    config = ncjax.ScanConfig.focused(preprocessing=preprocessing).pair_search()
    start = time.perf_counter()
    pairs = scan_pairs(model, images, y_scan, config=config, key=jax.random.key(recipe.seed))
    scan_s = time.perf_counter() - start
    return {
        **wb._described(recipe, accuracy, success),
        "sources_attacked": [list(a.sources or ()) for a in recipe.attacks],
        "classes": pairs.classes.tolist(), "norms": [wb._round(row) for row in pairs.norms],
        "epochs": pairs.epochs.tolist(), "max_epochs": config.max_epochs,
        "train_s": round(train_s, 1), "scan_s": round(scan_s, 1),
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
    }


# ------------------------------------------------------------------------------------------ summary


def _matrix(row: dict) -> np.ndarray:
    return np.asarray([[np.nan if v is None else v for v in r] for r in row["norms"]], np.float64)


def _row_ratio(norms: np.ndarray) -> np.ndarray:
    """The plain statistic the asymmetry is compared with: the row's median pair norm over the pair's."""
    return np.nanmedian(norms, axis=1, keepdims=True) / norms


def _statistics(row: dict) -> dict:
    """Per model: the largest asymmetry and its pair, the planted pairs' asymmetry, and the row ratio's."""
    norms = _matrix(row)
    score = pair_score(norms, row["classes"])
    ratio = _row_ratio(norms)
    planted = [(s, t) for t, sources in zip(row["targets"], row["sources_attacked"]) for s in sources]
    top_ratio = np.unravel_index(np.nanargmax(ratio), ratio.shape)
    return {"top": score.top, "planted": [(s, t, float(score.asymmetry[s, t]), float(ratio[s, t]), float(norms[s, t]))
                                          for s, t in planted],
            "top_ratio": (int(top_ratio[0]), int(top_ratio[1]), float(ratio[top_ratio]))}


def _variant(norms: np.ndarray, effects: str) -> np.ndarray:
    """The asymmetry with other effects taken out: "both" (the library's, by median polish), "row" (each source's
    median only), "column" (each target's only) or "none" (the plain n(t, s) / n(s, t))."""
    if effects == "both":
        return pair_score(norms).asymmetry
    off = ~np.eye(len(norms), dtype=bool)
    logs = np.where(off, np.log(np.where(np.isfinite(norms), norms, np.nanmax(norms))), np.nan)
    if effects != "none":
        logs = logs - np.nanmedian(logs, axis=1 if effects == "row" else 0, keepdims=True)
    return np.where(np.isfinite(norms), np.exp(logs.T - logs), np.nan)


def _variants_table(dev: list[dict]) -> list[str]:
    """Per dev model and way of taking effects out: the planted pairs' asymmetry and the largest other pair's."""
    lines = ["| dev model | effects taken out | planted pairs | largest other pair (source -> target) |",
             "|---|---|---|---|"]
    for r in dev:
        norms = _matrix(r)
        planted = {(s, t) for t, sources in zip(r["targets"], r["sources_attacked"]) for s in sources}
        for effects in ("both", "row", "column", "none"):
            values = _variant(norms, effects)
            others = [(values[a, b], a, b) for a in range(len(norms)) for b in range(len(norms))
                      if a != b and (a, b) not in planted and np.isfinite(values[a, b])]
            top, a, b = max(others)
            shown = ", ".join(f"{s}->{t}: {values[s, t]:.2f}" for s, t in sorted(planted)) or "-"
            lines.append(f"| {r['name']} | {effects} | {shown} | {top:.2f} ({a} -> {b}) |")
    return lines


def _kind(row: dict) -> str:
    if not row["targets"]:
        return "clean"
    return "infected" if min(row["attack_success"]) >= LEARNED else "unlearned"


def choose_min_asymmetry(dev: list[dict]) -> float:
    """The smallest threshold on a 0.1 grid from 1.5 above every dev clean model's largest asymmetry (no dev false
    alarm: with two dev clean models a rate is not measurable below 50 %)."""
    largest = max(_statistics(r)["top"].asymmetry for r in dev if _kind(r) == "clean")
    return float(np.round(max(1.5, np.floor(largest * 10) / 10 + 0.1), 1))


def summarize() -> str:
    split = json.loads(SPLIT.read_text())
    rows = wb.rows(RESULTS)
    dev = [r for r in rows if split[r["name"]] == "dev"]
    threshold = choose_min_asymmetry(dev)
    lines = ["# The pair scan on 10-label gray models", "",
             "Made by `experiments/pair_benchmark.py --summarize` from results/pair_benchmark.jsonl. Every model: all "
             "90 (source, target) pairs, one start each, at `ScanConfig.focused().pair_search()` (45 epochs of 5 "
             "steps at most), on 1,000 held-out clean images. Asymmetry: ncjax.verdict.pairs (log norms less row and "
             "column effects by median polish; a pair's residual against its reverse pair's). Row ratio: the row's "
             "median norm over the pair's, the plain statistic, for comparison.", "",
             f"**min_asymmetry chosen on the dev models: {threshold:g}** (the smallest value on a 0.1 grid above every "
             "dev clean model's largest asymmetry).", "",
             "| model | split | kind | attack success | largest asymmetry (source -> target) | planted pairs: "
             "asymmetry, row ratio, norm | largest row ratio (source -> target) | flagged targets | pair scan s |",
             "|---|---|---|---|---|---|---|---|---|"]
    outcome: dict[tuple[str, str], list[int]] = {}
    for r in sorted(rows, key=lambda r: (split[r["name"]], _kind(r), r["name"])):
        st = _statistics(r)
        score = pair_score(_matrix(r), r["classes"], min_asymmetry=threshold)
        kind = _kind(r)
        found = bool(score.targets) and set(score.targets) <= set(r["targets"]) if r["targets"] else not score.targets
        outcome.setdefault((split[r["name"]], kind), []).append(int(found))
        planted = "; ".join(f"{s}->{t}: {a:.2f}, {q:.2f}, {n:.1f}" for s, t, a, q, n in st["planted"]) or "-"
        top, (rs, rt, rq) = st["top"], st["top_ratio"]
        success = ", ".join(f"{v:.2f}" for v in r["attack_success"]) or "-"
        flagged = ", ".join(map(str, score.targets)) or "-"
        lines.append(f"| {r['name']} | {split[r['name']]} | {kind} | {success} | {top.asymmetry:.2f} ({top.source} -> "
                     f"{top.target}) | {planted} | {rq:.2f} ({rs} -> {rt}) | {flagged} | {r['scan_s']:.0f} |")
    lines += ["", "Ways of taking the row and column effects out, on the dev models (the choice of the library's "
              "statistic: the one where a planted pair stands above every dev clean pair):", "",
              *_variants_table(dev)]
    lines += ["", "| split | kind | models | right (infected: flagged at a planted target, nothing else; clean: "
              "nothing flagged) |", "|---|---|---|---|"]
    for (part, kind), hits in sorted(outcome.items()):
        lines.append(f"| {part} | {kind} | {len(hits)} | {sum(hits)} |")
    lines += ["", "Machine: a 2-core AMD EPYC CPU. The first three dev models' pair-scan seconds were measured while "
              "the test suite ran beside them (inflated); the others alone.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated model names")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no model after this many seconds")
    p.add_argument("--write-split", action="store_true", help="write pair_split.json (once, before scanning)")
    p.add_argument("--summarize", action="store_true", help="write pair_benchmark.md from the results")
    args = p.parse_args()
    if args.summarize:
        REPORT.write_text(summarize())
        print(REPORT.read_text())
        return 0
    if args.write_split:
        write_split()
        return 0
    split = json.loads(SPLIT.read_text())
    # dev models first: the statistic is chosen on them
    names = args.only.split(",") if args.only else sorted((m.name for m in MODELS), key=lambda n: split[n] != "dev")
    wb.run_models(names, measure, RESULTS, budget_s=args.budget_s, recipes=MODELS, describe=lambda row: (
        f"accuracy {row['clean_accuracy']}, attack {row['attack_success']} (train {row['train_s']} s, pairs "
        f"{row['scan_s']} s)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
