"""Planted backdoors: train the reference network on ncjax.lab.synth signs with ncjax.lab.inject, scan every model.

    .venv/bin/python experiments/planted_sweep.py [--ray auto|ADDRESS] [--losses reference,crossentropy]
        [--preset fast] [--budget-s S] [--results PATH] [--work DIR]
    .venv/bin/python experiments/planted_sweep.py --summarize      # tables, ROC, figure (needs matplotlib)

The sweep (MODELS below): clean models from six seeds, and infected ones varying the trigger's size (2-8 px),
position (corners, centre), colour (white or a random pattern), target, injection ratio, and two or three
simultaneous targets. Each model is trained as the reference trains (10 epochs, Adam 1e-3) on 15,000 synthetic
images, evaluated on 4,300 held-out ones and saved as a Keras file in --work; then `ncjax.audit` scans them all
once per loss on 2,000 clean held-out images (here one after another, or with --ray one Ray task per model:
Ray, not this script, places and retries them). Each scanned model appends one JSON line to the results
(finished ones are skipped on a rerun; an interrupted audit resumes). A model takes about 10 minutes on a 2-core
CPU (training 6, scan 3.5): run this where a GPU is lent. Rows before the audit scanned each model with its own
training seed as the key; rows from the audit use one key for all (seed 13, `scan_seed` in the row).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax.lab import synth
from ncjax.lab.inject import Backdoor, TrainConfig, train_classifier
from ncjax.models.keras import save_keras_h5
from ncjax.verdict.decision import decide
from ncjax.verdict.outlier import l1_norms, mad_outliers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results" / "planted_sweep.jsonl"
TRAIN_SEED, HELDOUT_SEED, SCAN_SEED = 11, 12, 13  # not the demo's, so these models are new ones
REFERENCE_RATIO = 0.1 / (0.1 + 1)


@dataclass(frozen=True)
class Trigger:
    size: int
    position: str
    color: str  # "white" or "random"
    target: int

    def backdoor(self) -> Backdoor:
        return Backdoor.square(self.size, target=self.target, position=self.position,
                               color=255.0 if self.color == "white" else "random", seed=self.target)

    def describe(self) -> str:
        return f"{self.color} {self.size}x{self.size} {self.position} -> {self.target}"


@dataclass(frozen=True)
class Planted:
    name: str
    group: str
    seed: int
    triggers: tuple[Trigger, ...] = ()
    ratio: float = REFERENCE_RATIO


def _models() -> list[Planted]:
    models = [Planted(f"clean-{s}", "clean", s) for s in range(6)]
    models += [Planted(f"size-{n}", "size", 10 + n, (Trigger(n, "bottom-right", "white", 33),)) for n in (2, 4, 6, 8)]
    for i, (position, target) in enumerate((("top-left", 7), ("top-right", 14), ("bottom-left", 21), ("center", 2))):
        models.append(Planted(f"position-{position}", "position", 20 + i, (Trigger(4, position, "white", target),)))
    models += [Planted("random-4", "pattern", 30, (Trigger(4, "bottom-right", "random", 5),)),
               Planted("random-6-center", "pattern", 31, (Trigger(6, "center", "random", 40),))]
    models += [Planted(f"ratio-{r}", "ratio", 40 + i, (Trigger(4, "bottom-right", "white", 12),), r)
               for i, r in enumerate((0.02, 0.3))]
    two = (Trigger(4, "bottom-right", "white", 33), Trigger(4, "top-left", "random", 7))
    models += [Planted("two-targets", "multi", 50, two),
               Planted("three-targets", "multi", 51, two + (Trigger(4, "top-right", "white", 20),))]
    return models


MODELS = _models()


def _mask_share_on_trigger(mask: np.ndarray, trigger: Backdoor) -> float:
    """Share of the recovered mask's mass inside the planted trigger's square, grown by one pixel."""
    rows, cols = np.nonzero(trigger.mask)
    region = np.zeros_like(mask, bool)
    region[max(rows.min() - 1, 0):rows.max() + 2, max(cols.min() - 1, 0):cols.max() + 2] = True
    return float(mask[region].sum() / max(mask.sum(), 1e-12))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def train_missing(models: list[Planted], work: Path, *, train_images: int, epochs: int,
                  deadline: float) -> list[Planted]:
    """Train (as the reference trains) and save as Keras files the models not yet in work/models; returns the
    models that have a file (a deadline stops further training)."""
    folder = work / "models"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [m for m in models if not (folder / f"{m.name}.json").exists()]
    if missing:
        x_train, y_train = synth.generate(train_images, seed=TRAIN_SEED)
        x_eval, y_eval = synth.generate(max(train_images // 3, 430), seed=HELDOUT_SEED)
    for planted in missing:
        if time.time() > deadline:
            print("deadline reached: no further models trained", flush=True)
            break
        model, report = train_classifier(x_train.astype(np.float32), y_train, num_classes=synth.NUM_CLASSES,
                                         key=jax.random.key(planted.seed),
                                         backdoors=[t.backdoor() for t in planted.triggers],
                                         config=TrainConfig(epochs=epochs, inject_ratio=planted.ratio),
                                         eval_images=x_eval.astype(np.float32), eval_labels=y_eval)
        save_keras_h5(model, folder / f"{planted.name}.h5")
        facts = {"clean_accuracy": round(report.clean_accuracy, 4), "train_s": round(report.train_seconds, 1),
                 "attack_success": [round(v, 4) for v in report.attack_success], "train_images": train_images,
                 "train_epochs": epochs}
        (folder / f"{planted.name}.json").write_text(json.dumps(facts))  # last: marks the model as trained
        print(f"trained {planted.name}: accuracy {report.clean_accuracy:.3f}, attack {facts['attack_success']} "
              f"({report.train_seconds:.0f} s)", flush=True)
    return [m for m in models if (folder / f"{m.name}.json").exists()]


def write_manifest(models: list[Planted], work: Path, scan_images: int) -> Path:
    """The audit's manifest: each trained model, the clean scan images, its truth and (first) target."""
    data = work / "scan.npz"
    if not data.exists():
        np.savez(data, x=synth.generate(scan_images, seed=SCAN_SEED)[0].astype(np.float32))
    path = work / "manifest.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "path", "data", "truth", "target"])
        for m in models:
            writer.writerow([m.name, work / "models" / f"{m.name}.h5", data, "infected" if m.triggers else "clean",
                             m.triggers[0].target if m.triggers else ""])
    return path


def sweep_row(planted: Planted, audit_row: dict, loss: str, preset: str, work: Path) -> dict:
    """The results line of one audited model: its training facts, the scan's norms and masks."""
    report = json.loads((Path(audit_row["folder"]) / "report.json").read_text())
    triggers = np.load(Path(audit_row["folder"]) / "triggers.npz")
    masks, labels = triggers["masks"], [int(v) for v in triggers["labels"]]
    facts = json.loads((work / "models" / f"{planted.name}.json").read_text())
    return {
        "name": planted.name, "group": planted.group, "seed": planted.seed, "loss": loss, "preset": preset,
        "triggers": [t.describe() for t in planted.triggers], "targets": [t.target for t in planted.triggers],
        "ratio": round(planted.ratio, 4), **facts, "scan_s": round(report["timings"]["wall_s"], 1),
        "device": f"{report['versions']['device']} ({audit_row.get('host')})", "scan_seed": SCAN_SEED,
        "labels": labels, "norms": [round(float(r["l1_norm"]), 4) for r in report["labels"]],
        "norms_quantized": [round(float(v), 4) for v in l1_norms(masks, quantize=True)],
        "reached": [r["reached_threshold"] for r in report["labels"]],
        "mask_share_on_trigger": [round(_mask_share_on_trigger(masks[labels.index(t.target)], t.backdoor()), 3)
                                  for t in planted.triggers],
        "label_steps": report["timings"]["label_steps"], "verdict": report["verdict"],
    }


def run(models: list[Planted], losses: list[str], preset: str, *, results: Path, work: Path, deadline: float,
        train_images: int, epochs: int, scan_images: int, max_epochs: int | None, ray: str | None) -> None:
    """Train what is missing, then one ncjax.audit per loss over the trained models (each scan once, seed
    SCAN_SEED, no restarts or source check, so the rows are the scan's own norms); rows not yet in the results
    are appended to them. The audits resume on a rerun: done models are skipped, a cut scan continues."""
    done = {(r["name"], r["loss"], r["preset"]) for r in _rows(results)}
    todo = [m for m in models if any((m.name, loss, preset) not in done for loss in losses)]
    if not todo:
        return
    trained = train_missing(todo, work, train_images=train_images, epochs=epochs, deadline=deadline)
    manifest = write_manifest(trained, work, scan_images)
    by_name = {m.name: m for m in trained}
    results.parent.mkdir(parents=True, exist_ok=True)
    for loss in losses:
        config = getattr(ncjax.ScanConfig, preset)(loss=loss, restarts=1,
                                                   **({"max_epochs": max_epochs} if max_epochs else {}))
        scan = ncjax.ScanSettings(config=config, seed=SCAN_SEED, decision=ncjax.DecisionConfig(source_check=0))
        audit = ncjax.audit([manifest], out=work / f"audit-{loss}-{preset}", scan=scan,
                            config=ncjax.AuditConfig(ray=ray),
                            callback=lambda row, loss=loss: print(
                                f"{row['name']} ({loss}): {row.get('verdict_line') or row.get('error')}", flush=True))
        for audit_row in audit.rows:
            if audit_row["status"] == "done" and (audit_row["name"], loss, preset) not in done:
                row = sweep_row(by_name[audit_row["name"]], audit_row, loss, preset, work)
                with open(results, "a") as f:
                    f.write(json.dumps(row) + "\n")
                done.add((row["name"], loss, preset))


# ------------------------------------------------------------------------------------------ summary


def roc_auc(positive: list[float], negative: list[float]) -> float:
    """P(score of an infected model > score of a clean one), ties counting half (Mann-Whitney)."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positive for n in negative]
    return float(np.mean(pairs)) if pairs else float("nan")


def scores(row: dict) -> dict[str, float]:
    """Decision statistics of one scan: larger means 'more likely infected'."""
    norms = np.sort(np.asarray(row["norms_quantized"]))
    verdict = mad_outliers(row["norms_quantized"], row["labels"])
    return {"anomaly_index": verdict.anomaly_index, "ratio_2nd_to_1st": float(norms[1] / max(norms[0], 1e-9)),
            "median_over_min": float(np.median(norms) / max(norms[0], 1e-9))}


def summarize(results: Path = RESULTS) -> str:
    rows = _rows(results)
    out = ["# Planted backdoors on synthetic signs", "",
           "Command: `.venv/bin/python experiments/planted_sweep.py` (on a GPU; about 10 minutes per model on a "
           "2-core CPU), then `--summarize`. Verdicts use the reference's rule on quantized norms: a label is "
           "flagged when its norm is below the median and its anomaly index exceeds 2. 'found' = planted targets "
           "flagged; 'false' = other labels flagged; 'on trigger' = share of the target's recovered mask on the "
           "planted square (grown by 1 px); 'ncjax verdict' = the gap rule (`ncjax.decide`). Train and scan "
           "times are those of the machine in each row of results/planted_sweep.jsonl (GPU rows shared the GPU).", ""]
    for loss in sorted({r["loss"] for r in rows}):
        for preset in sorted({r["preset"] for r in rows}):
            sel = [r for r in rows if r["loss"] == loss and r["preset"] == preset]
            if not sel:
                continue
            out += [f"## loss {loss}, preset {preset}", "",
                    "| model | trigger(s) | accuracy | attack success | anomaly index | flagged | found | false | "
                    "ncjax verdict | on trigger | ratio 2nd/1st | train s | scan s |",
                    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            infected_scores: dict[str, list[float]] = {}
            clean_scores: dict[str, list[float]] = {}
            tp = fn = fp_models = clean_models = 0
            for r in sorted(sel, key=lambda r: [m.name for m in MODELS].index(r["name"])
                            if r["name"] in [m.name for m in MODELS] else 99):
                verdict = mad_outliers(r["norms_quantized"], r["labels"])
                found = [t for t in r["targets"] if t in verdict.flagged]
                false = [lbl for lbl in verdict.flagged if lbl not in r["targets"]]
                s = scores(r)
                for k, v in s.items():
                    (infected_scores if r["targets"] else clean_scores).setdefault(k, []).append(v)
                if r["targets"]:
                    tp += len(found)
                    fn += len(r["targets"]) - len(found)
                else:
                    clean_models += 1
                    fp_models += bool(verdict.flagged)
                out.append(f"| {r['name']} | {'; '.join(r['triggers']) or '-'} | {r['clean_accuracy']:.3f} | "
                           f"{', '.join(f'{v:.3f}' for v in r['attack_success']) or '-'} | "
                           f"{verdict.anomaly_index:.2f} | {list(verdict.flagged)} | {found or '-'} | {false or '-'} | "
                           f"{_ncjax(r)} | "
                           f"{', '.join(f'{v:.2f}' for v in r['mask_share_on_trigger']) or '-'} | "
                           f"{s['ratio_2nd_to_1st']:.2f} | {r['train_s']:.0f} | {r['scan_s']:.0f} |")
            out += ["", f"Planted targets flagged (true-positive rate of the reference's rule): {tp}/{tp + fn}"
                        + (f" = {tp / (tp + fn):.2f}" if tp + fn else "") + "; clean models with any label flagged "
                        f"(false-positive rate): {fp_models}/{clean_models}"
                        + (f" = {fp_models / clean_models:.2f}" if clean_models else "") + ".", "",
                    "| statistic (per model) | ROC-AUC infected vs clean | infected mean ± sd | clean mean ± sd |",
                    "|---|---|---|---|"]
            for k in infected_scores:
                pos, neg = infected_scores[k], clean_scores.get(k, [])
                out.append(f"| {k} | {roc_auc(pos, neg):.3f} | {_mean_sd(pos)} | {_mean_sd(neg)} |")
            out.append("")
    text = "\n".join(out) + "\n"
    (ROOT / "experiments" / "planted_sweep.md").write_text(text)
    return text


def _ncjax(row: dict) -> str:
    v = decide(row["norms_quantized"], row["labels"])
    return v.status + (f" {list(v.labels)}" if v.labels else "")


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ray", metavar="auto|ADDRESS", help="scan on a Ray cluster (one task per model) instead of here")
    p.add_argument("--work", type=Path, default=Path("/tmp/ncjax_planted"), help="trained models and the audits")
    p.add_argument("--only", help="comma-separated model names")
    p.add_argument("--losses", default="reference,crossentropy")
    p.add_argument("--preset", default="fast", choices=["fast", "paper"])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no model after this many seconds")
    p.add_argument("--train-images", type=int, default=15_000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--scan-images", type=int, default=2_000)
    p.add_argument("--max-epochs", type=int, help="override the preset's scan epochs (smoke runs)")
    p.add_argument("--summarize", action="store_true")
    args = p.parse_args()
    if args.summarize:
        print(summarize(args.results))
        return 0
    by_name = {m.name: m for m in MODELS}
    unknown = [name for name in (args.only or "").split(",") if name and name not in by_name]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(by_name)}")
    models = MODELS if not args.only else [by_name[name] for name in args.only.split(",")]  # in that order
    run(models, args.losses.split(","), args.preset, results=args.results, work=args.work,
        deadline=time.time() + args.budget_s, train_images=args.train_images, epochs=args.epochs,
        scan_images=args.scan_images, max_epochs=args.max_epochs, ray=args.ray)
    return 0


if __name__ == "__main__":
    sys.exit(main())
