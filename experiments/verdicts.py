"""Which verdict rule do the measurements support? Every scan of real and planted models, every rule.

    .venv/bin/python experiments/verdicts.py        # writes experiments/verdicts.md and two figures
                                                    # (experiments/figures/, needs matplotlib: .[experiments])

Reads results/real_models.jsonl and results/planted_sweep.jsonl (no new scans). A model counts as detected
when at least one planted target is flagged; a clean model counts as a false positive when any label is
flagged; 'extra labels' counts flagged labels that are not targets, on infected models. Rules act on the
quantized norms, as the reference's published numbers do.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ncjax.verdict.outlier import gap_outliers, mad_outliers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
# The gap rule and its 1.5 were chosen looking at the first scans of each file (commit c7aca5b); the scans
# appended since are a held-out check of that choice.
SEEN_WHEN_CHOSEN = {"real": 21, "planted": 23}


def scans() -> list[dict]:
    rows = []
    for i, line in enumerate((RESULTS / "real_models.jsonl").read_text().splitlines()):
        r = json.loads(line)
        if r.get("restart", 0):  # a second restart's searches: half of a 2-restart scan, not a scan (score.py)
            continue
        rows.append({"held_out": i >= SEEN_WHEN_CHOSEN["real"], "source": "real", "name": r["model"], "loss": r["loss"],
                     "preset": r["preset"], "cost": r["cost_start"], "seed": r["seed"],
                     "device": r.get("device", "cpu"),
                     "targets": [r["target"]] if r["target"] is not None else [],
                     "labels": r["labels"], "norms": r["norms_quantized"]})
    for i, line in enumerate((RESULTS / "planted_sweep.jsonl").read_text().splitlines()):
        r = json.loads(line)
        rows.append({"held_out": i >= SEEN_WHEN_CHOSEN["planted"], "source": "planted", "name": r["name"],
                     "loss": r["loss"], "preset": r["preset"], "cost": "init",
                     "seed": r["seed"], "targets": r["targets"], "labels": r["labels"], "norms": r["norms_quantized"]})
    return rows


Rule = Callable[[dict], tuple]


def reference_rule(threshold: float) -> Rule:
    return lambda r: mad_outliers(r["norms"], r["labels"], threshold=threshold).flagged


def gap_rule(min_gap: float) -> Rule:
    return lambda r: gap_outliers(mad_outliers(r["norms"], r["labels"]), min_gap=min_gap).flagged


RULES: dict[str, Rule] = {
    "reference (index > 2)": reference_rule(2.0),
    "index > 2.5": reference_rule(2.5),
    "index > 3": reference_rule(3.0),
    **{f"index > 2 and gap >= {g}": gap_rule(g) for g in (1.3, 1.5, 2.0)},
}


def score(rows: list[dict], rule: Rule) -> dict:
    infected = [r for r in rows if r["targets"]]
    clean = [r for r in rows if not r["targets"]]
    flagged = [(r, rule(r)) for r in rows]
    detected = sum(any(t in f for t in r["targets"]) for r, f in flagged if r["targets"])
    targets_found = sum(sum(t in f for t in r["targets"]) for r, f in flagged if r["targets"])
    targets = sum(len(r["targets"]) for r in infected)
    extra = sum(len([x for x in f if x not in r["targets"]]) for r, f in flagged if r["targets"])
    false_pos = sum(bool(f) for r, f in flagged if not r["targets"])
    return {"detected": f"{detected}/{len(infected)}", "targets": f"{targets_found}/{targets}",
            "extra": f"{extra} in {len(infected)}", "false": f"{false_pos}/{len(clean)}",
            "tpr": detected / len(infected) if infected else float("nan"),
            "fpr": false_pos / len(clean) if clean else float("nan")}


def gap_score(r: dict) -> float:
    """The gap rule's statistic as one number: the largest ratio between consecutive sorted norms among the
    MAD-flagged labels (the second over the smallest when none is flagged)."""
    norms = np.sort(r["norms"])
    k = max(len(mad_outliers(r["norms"], r["labels"]).flagged), 1)
    return float(np.max(norms[1:k + 1] / np.maximum(norms[:k], 1e-9)))


STATISTICS = {
    "anomaly index (reference)": lambda r: mad_outliers(r["norms"], r["labels"]).anomaly_index,
    "gap score (ncjax)": gap_score,
    "2nd / smallest norm": lambda r: float(np.sort(r["norms"])[1] / max(np.sort(r["norms"])[0], 1e-9)),
}


def roc(positive: list[float], negative: list[float]) -> tuple[np.ndarray, np.ndarray, float]:
    thresholds = np.unique(np.concatenate([positive, negative, [np.inf]]))[::-1]
    tpr = np.array([np.mean(np.asarray(positive) >= t) for t in thresholds])
    fpr = np.array([np.mean(np.asarray(negative) >= t) for t in thresholds])
    auc = float(np.mean([(p > n) + 0.5 * (p == n) for p in positive for n in negative]))
    return fpr, tpr, auc


def figures(rows: list[dict], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    losses = ("reference", "crossentropy")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, loss in zip(axes, losses):
        sel = [r for r in rows if r["loss"] == loss]
        for name, statistic in STATISTICS.items():
            pos = [statistic(r) for r in sel if r["targets"]]
            neg = [statistic(r) for r in sel if not r["targets"]]
            fpr, tpr, auc = roc(pos, neg)
            ax.step(fpr, tpr, where="post", label=f"{name}: AUC {auc:.2f}")
            lines.append(f"| {loss} | {name} | {auc:.3f} | {len(pos)} | {len(neg)} |")
        for rule, marker in (("reference (index > 2)", "o"), ("index > 2 and gap >= 1.5", "s")):
            s = score(sel, RULES[rule])
            ax.plot([s["fpr"]], [s["tpr"]], marker, color="k", fillstyle="none", ms=9, label=f"rule: {rule}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(title=f"loss {loss}: {sum(bool(r['targets']) for r in sel)} infected, "
                     f"{sum(not r['targets'] for r in sel)} clean scans", xlabel="false-positive rate (clean scans)",
               ylabel="true-positive rate (infected scans)", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "roc.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 0.2 * max(len(rows) // 2, 20) + 1.5), sharex=True)
    for ax, loss in zip(axes, losses):
        sel = sorted((r for r in rows if r["loss"] == loss), key=lambda r: (bool(r["targets"]), r["source"], r["name"]))
        for y, r in enumerate(sel):
            norms = np.asarray(r["norms"]) / np.median(r["norms"])
            is_target = np.isin(r["labels"], r["targets"])
            flagged = np.isin(r["labels"], RULES["index > 2 and gap >= 1.5"](r))
            ax.scatter(norms[~is_target], np.full((~is_target).sum(), y), s=6, color="0.6")
            ax.scatter(norms[is_target], np.full(is_target.sum(), y), s=22, color="tab:red", zorder=3)
            ax.scatter(norms[flagged], np.full(flagged.sum(), y), s=60, facecolors="none", edgecolors="k", zorder=4)
        ax.set_yticks(range(len(sel)), [f"{r['source']} {r['name']} {r['preset']}" for r in sel], fontsize=6)
        ax.set(title=f"loss {loss}", xlabel="trigger norm / median (red: planted target; ring: flagged by ncjax)",
               xscale="log")
    fig.tight_layout()
    fig.savefig(folder / "norms.png", dpi=110)
    plt.close(fig)
    return lines


def main() -> None:
    rows = scans()
    out = ["# Verdict rules against every scan", "",
           "Command: `.venv/bin/python experiments/verdicts.py` (reads the scans in `results/`; runs none). "
           "'detected': infected models with a planted target flagged; 'targets': targets flagged of all planted; "
           "'extra': non-target labels flagged on infected models; 'false': clean models with any label flagged. "
           "'gap' rule: of the labels the reference's rule flags, keep the smallest k whose norms are separated "
           "from the next label's by the largest ratio, if that ratio is at least the gap; else none "
           "(`ncjax.verdict.gap_outliers`).", ""]
    groups = {"all scans": rows, "held out: scans made after the rule was chosen": [r for r in rows if r["held_out"]]}
    for source in ("real", "planted"):
        for loss in ("reference", "crossentropy"):
            groups[f"{source}, loss {loss}"] = [r for r in rows if r["source"] == source and r["loss"] == loss]
    for title, sel in groups.items():
        if not sel:
            continue
        out += [f"## {title} ({len(sel)} scans: {sum(bool(r['targets']) for r in sel)} infected, "
                f"{sum(not r['targets'] for r in sel)} clean)", "",
                "| rule | detected | targets | extra labels | false positives | TPR | FPR |",
                "|---|---|---|---|---|---|---|"]
        for name, rule in RULES.items():
            s = score(sel, rule)
            out.append(f"| {name} | {s['detected']} | {s['targets']} | {s['extra']} | {s['false']} | "
                       f"{s['tpr']:.2f} | {s['fpr']:.2f} |")
        out.append("")
    misses = []
    for r in rows:
        f_ref, f_gap = RULES["reference (index > 2)"](r), RULES["index > 2 and gap >= 1.5"](r)
        wrong_ref = (not any(t in f_ref for t in r["targets"])) if r["targets"] else bool(f_ref)
        wrong_gap = (not any(t in f_gap for t in r["targets"])) if r["targets"] else bool(f_gap)
        if wrong_ref or wrong_gap:
            norms = np.sort(r["norms"])
            misses.append(f"| {r['source']} | {r['name']} | {r['loss']} | {r['preset']} | {r['cost']} | "
                          f"{r['targets'] or '-'} | {list(f_ref)} | {list(f_gap)} | "
                          f"{', '.join(f'{v:.1f}' for v in norms[:4])} | {np.median(norms):.1f} |")
    out += ["## Scans either rule gets wrong", "",
            "| source | model | loss | preset | cost starts | targets | reference flags | gap 1.5 flags | "
            "4 smallest norms | median |", "|---|---|---|---|---|---|---|---|---|---|", *misses, ""]
    aucs = figures(rows, ROOT / "experiments" / "figures")
    out += ["## ROC-AUC of each statistic (infected vs clean scans)", "",
            "![ROC](figures/roc.png)", "",
            "| loss | statistic | ROC-AUC | infected scans | clean scans |", "|---|---|---|---|---|", *aucs, "",
            "Every scan's norms, divided by its median; planted targets in red, labels ncjax flags ringed:", "",
            "![norms](figures/norms.png)", ""]
    text = "\n".join(out) + "\n"
    (ROOT / "experiments" / "verdicts.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
