"""Planted backdoors: train the reference network on ncjax.synth signs with ncjax.inject, scan every model.

    .venv/bin/python experiments/planted_sweep.py [--shard 0/1] [--losses reference,crossentropy]
        [--preset fast] [--budget-s S] [--results PATH]
    .venv/bin/python experiments/planted_sweep.py --summarize      # tables, ROC, figure (needs matplotlib)

The sweep (MODELS below): clean models from six seeds, and infected ones varying the trigger's size (2-8 px),
position (corners, centre), colour (white or a random pattern), target, injection ratio, and two or three
simultaneous targets. Each model is trained as the reference trains (10 epochs, Adam 1e-3) on 15,000 synthetic
images, evaluated on 4,300 held-out ones, then scanned once per loss on 2,000 clean held-out images. Each scan
appends one JSON line to the results as soon as it ends (finished ones are skipped on a rerun); `--shard k/n`
runs every n-th model so several processes can share a GPU. A model takes about 10 minutes on a 2-core CPU
(training 6, scan 3.5): run this where a GPU is lent.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax import synth
from ncjax.inject import Backdoor, TrainConfig, train_classifier
from ncjax.outlier import l1_norms, mad_outliers
from ncjax.verdict import decide

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


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:  # several shards may share one file: one locked write per line
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(row) + "\n")
        fcntl.flock(f, fcntl.LOCK_UN)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def run(models: list[Planted], losses: list[str], preset: str, *, results: Path, deadline: float,
        train_images: int, epochs: int, scan_images: int, max_epochs: int | None) -> None:
    done = {(r["name"], r["loss"], r["preset"]) for r in _rows(results)}
    todo = [m for m in models if any((m.name, loss, preset) not in done for loss in losses)]
    if not todo:
        return
    device = f"{jax.default_backend()}: {jax.devices()[0].device_kind}"
    x_train, y_train = synth.generate(train_images, seed=TRAIN_SEED)
    x_eval, y_eval = synth.generate(max(train_images // 3, 430), seed=HELDOUT_SEED)
    x_scan, _ = synth.generate(scan_images, seed=SCAN_SEED)
    x_train, x_eval, x_scan = (x.astype(np.float32) for x in (x_train, x_eval, x_scan))
    results.parent.mkdir(parents=True, exist_ok=True)
    for planted in todo:
        if time.time() > deadline:
            print("deadline reached: no further models started", flush=True)
            return
        backdoors = [t.backdoor() for t in planted.triggers]
        model, report = train_classifier(x_train, y_train, num_classes=synth.NUM_CLASSES,
                                         key=jax.random.key(planted.seed), backdoors=backdoors,
                                         config=TrainConfig(epochs=epochs, inject_ratio=planted.ratio),
                                         eval_images=x_eval, eval_labels=y_eval)
        for loss in losses:
            if (planted.name, loss, preset) in done:
                continue
            changes = {"loss": loss} if max_epochs is None else {"loss": loss, "max_epochs": max_epochs}
            config = getattr(ncjax.ScanConfig, preset)(**changes)
            start = time.perf_counter()
            result = ncjax.scan_all_labels(model, x_scan, config=config, key=jax.random.key(planted.seed))
            wall = time.perf_counter() - start
            masks = np.asarray(result.masks)
            row = {
                "name": planted.name, "group": planted.group, "seed": planted.seed, "loss": loss, "preset": preset,
                "triggers": [t.describe() for t in planted.triggers], "targets": [t.target for t in planted.triggers],
                "ratio": round(planted.ratio, 4), "train_images": train_images, "train_epochs": epochs,
                "clean_accuracy": round(report.clean_accuracy, 4),
                "attack_success": [round(v, 4) for v in report.attack_success],
                "train_s": round(report.train_seconds, 1), "scan_s": round(wall, 1), "device": device,
                "labels": result.labels.tolist(), "norms": [round(float(v), 4) for v in result.l1_norms],
                "norms_quantized": [round(float(v), 4) for v in l1_norms(masks, quantize=True)],
                "reached": result.reached_threshold.tolist(),
                "mask_share_on_trigger": [round(_mask_share_on_trigger(masks[result.label_index(t.target)], b), 3)
                                          for t, b in zip(planted.triggers, backdoors)],
                "label_steps": result.label_steps,
            }
            _append(results, row)
            verdict = mad_outliers(row["norms_quantized"], result.labels)
            print(f"{planted.name} ({loss}): accuracy {report.clean_accuracy:.3f}, attack {row['attack_success']}, "
                  f"flagged {list(verdict.flagged)}, anomaly index {verdict.anomaly_index:.2f} "
                  f"(train {report.train_seconds:.0f} s, scan {wall:.0f} s)", flush=True)


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
    p.add_argument("--shard", default="0/1", help="k/n: run models k, k+n, k+2n, ...")
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
    k, n = (int(v) for v in args.shard.split("/"))
    by_name = {m.name: m for m in MODELS}
    unknown = [name for name in (args.only or "").split(",") if name and name not in by_name]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(by_name)}")
    models = MODELS[k::n] if not args.only else [by_name[name] for name in args.only.split(",")]  # in that order
    run(models, args.losses.split(","), args.preset, results=args.results, deadline=time.time() + args.budget_s,
        train_images=args.train_images, epochs=args.epochs, scan_images=args.scan_images, max_epochs=args.max_epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
