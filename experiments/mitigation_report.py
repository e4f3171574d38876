"""experiments/mitigation.md and the pruning figure, from experiments/results/mitigation.jsonl (the last row of
each subject and method)."""
from __future__ import annotations

import json
from pathlib import Path


def _pct(value, digits: int = 1) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.{digits}f}"


def _triggers(values: dict | None) -> str:
    return "n/a" if not values else ", ".join(f"{k}: {_pct(v)}" for k, v in values.items())


def _latest(path: Path) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["subject"], row["method"])] = row
    return list(rows.values())


def _table(rows: list[dict]) -> list[str]:
    lines = ["| subject | verdict (named) | labels removed | method | clean acc. before -> after | reversed ASR "
             "before -> after | true ASR before -> after | time (s) | outcome |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b, a = r["before"], r["after"]
        outcome = ""
        if r["method"].startswith("prune"):
            p = r["prune"]
            step = p["steps"][p["chosen_step"]]
            outcome = f"{step['pruned']} of {p['units']} neurons of {p['layer']} ({p['stop']})"
        elif r["method"] == "filter":
            f = r["filter"]
            outcome = (f"{len(next(iter(f['neurons'].values())))} neurons per trigger; flags "
                       f"{_pct(f['false_positive_rate'])} % of clean; catches "
                       f"reversed {_triggers(f['caught'])}, true {_triggers(f['true_caught'])}")
        elif "read_back" in r:
            outcome = f"written and read back: max logit difference {r['read_back']['max_logit_difference']:.2g}"
        lines.append(
            f"| {r['subject']} | {r['verdict']} {r['named']} | {r['labels_removed']} | {r['method']} | "
            f"{_pct(b['clean_accuracy'], 2)} -> {_pct(a['clean_accuracy'], 2)} | {_triggers(b['attack_success'])} -> "
            f"{_triggers(a['attack_success'])} | {_triggers(b['true_attack_success'])} -> "
            f"{_triggers(a['true_attack_success'])} | {r['seconds']:.0f} | {outcome} |")
    return lines


def _figure(rows: list[dict], figure: Path) -> bool:
    curves = [r for name in ("prune-to-limit", "prune-last-conv-to-limit") for r in rows
              if r["subject"] == "real-backdoor" and r["method"] == name]
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 3.6), squeeze=False)
    for ax, row in zip(axes[0], curves):
        steps = row["prune"]["steps"]
        share = [100 * s["pruned_share"] for s in steps]
        ax.plot(share, [100 * s["clean_accuracy"] for s in steps], "o-", label="clean accuracy")
        for label in steps[0]["attack_success"]:
            ax.plot(share, [100 * s["attack_success"][label] for s in steps], "s-",
                    label=f"reversed trigger of {label}")
        for label in steps[0]["true_attack_success"] or {}:
            ax.plot(share, [100 * s["true_attack_success"][label] for s in steps], "^-",
                    label=f"true trigger of {label}")
        ax.set_xlabel(f"neurons of {row['prune']['layer']} pruned (%), most trigger-excited first")
        ax.set_ylabel("% of held-apart images")
        ax.set_title(f"real backdoored GTSRB model: pruning {row['prune']['layer']}", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    return True


def write_report(results: Path, report: Path, figure: Path) -> None:
    rows = _latest(results)
    devices = sorted({r["device"] for r in rows})
    lines = ["# Mitigation measured", "",
             "Written by `experiments/mitigation.py --report` from `experiments/results/mitigation.jsonl`. Each "
             "subject was scanned by `python -m ncjax.run` (fast preset, seed 0); the labels removed are those the "
             "verdict named, or the three smallest triggers where it named none. Every defense ran with its "
             "defaults (`MitigationConfig()`), key 0; half of the images (per class) were held apart and every "
             "figure below is measured on them. ASR: attack success, the share of held-apart images of other "
             "labels that the stamped image sends to the trigger's label, in %. For the filter, 'after' is the "
             "model behind its filter: a flagged image counts as refused.", "",
             f"Device: {', '.join(devices)}.", "", *_table(rows), ""]
    if _figure(rows, figure):
        lines += [f"![pruning curve](figures/{figure.name})", ""]
    report.write_text("\n".join(lines))
