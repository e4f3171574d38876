"""Detection quality on the real GTSRB models in ../shared/real, across seeds, losses and cost starts.

    .venv/bin/python experiments/real_models.py [--models backdoor,clean,nabagata,abis47] [--seeds 0,1,2]
        [--losses reference,crossentropy] [--cost-start init,zero] [--preset fast] [--ray auto|ADDRESS]
    .venv/bin/python experiments/real_models.py --summarize

Each (seed, loss, cost start) is one `ncjax.audit` of the models (here, or with --ray one Ray task per model);
each scanned model appends one JSON line to experiments/results/real_models.jsonl (nothing is lost when a long
run is stopped: finished combinations are skipped and a cut scan resumes when rerun), and --summarize writes
experiments/real_models.md. Fast preset: about 3.6 minutes per scan on a 2-core CPU. The rows with a `restart`
field (each label's K-th restart alone, for experiments/score.py) came from this script's earlier form, which
called ncjax.scan_slots; the audit scans whole models (`--restarts R` keeps the best of R).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax.verdict.decision import decide
from ncjax.verdict.outlier import l1_norms, mad_outliers

ROOT = Path(__file__).resolve().parent.parent
# Beside the checkout, as CI lays it; NCJAX_REAL_DATA points elsewhere (as for the tests and the benchmark).
REAL = Path(os.environ.get("NCJAX_REAL_DATA", ROOT.parent / "shared" / "real"))
RESULTS = ROOT / "experiments" / "results" / "real_models.jsonl"
MODELS = {  # name: (file, image key, infected target or None)
    "backdoor": ("gtsrb_backdoor_33_logits.h5", "x_roi", 33),
    "clean": ("gtsrb_clean_logits.h5", "x_roi", None),
    "nabagata": ("gtsrb_clean_nabagata_keras224.h5", "x", None),
    "abis47": ("gtsrb_clean_abis47_keras260.h5", "x", None),
}


CPU_HERE = "cpu: 2-core x86_64"  # this project's CI-like machine, where the CPU scans ran


def _device() -> str:
    if jax.default_backend() == "cpu":
        return f"cpu: {os.cpu_count()}-core {platform.machine()}"
    return f"{jax.default_backend()}: {jax.devices()[0].device_kind}"


def _rows(results: Path) -> list[dict]:
    if not results.exists():
        return []
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    for r in rows:
        r.setdefault("device", CPU_HERE)  # rows written before devices were recorded
    return rows


def write_manifest(models: list[str], work: Path) -> Path:
    """The audit's manifest: each model with its image key and truth."""
    path = work / "manifest.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "path", "data", "data_key", "truth", "target"])
        for name in models:
            file, key, target = MODELS[name]
            writer.writerow([name, REAL / "models" / file, REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz", key,
                             "clean" if target is None else "infected", "" if target is None else target])
    return path


def scan_row(audit_row: dict, *, loss: str, cost_start: str, seed: int, preset: str) -> dict:
    """The results line of one audited model: the scan's own norms (exact and quantized as the reference's
    PNGs), from its report and its triggers file."""
    folder = Path(audit_row["folder"])
    report = json.loads((folder / "report.json").read_text())
    masks = np.load(folder / "triggers.npz")["masks"]
    return {"model": audit_row["name"], "loss": loss, "cost_start": cost_start, "seed": seed, "preset": preset,
            "target": audit_row["target"], "wall_s": round(report["timings"]["wall_s"], 1),
            "labels": [r["label"] for r in report["labels"]],
            "norms": [round(float(r["l1_norm"]), 4) for r in report["labels"]],
            "norms_quantized": [round(float(v), 4) for v in l1_norms(masks, quantize=True)],
            "reached": [r["reached_threshold"] for r in report["labels"]],
            "epochs": [r["epochs"] for r in report["labels"]], "label_steps": report["timings"]["label_steps"],
            "device": _device() if audit_row.get("host") == platform.node() else report["versions"]["device"],
            "compile_s": round(report["timings"]["compile_s"], 1), "verdict": report["verdict"]}


def run(models, seeds, losses, cost_starts, preset, *, results: Path = RESULTS, work: Path, ray: str | None = None,
        deadline: float = float("inf")) -> None:
    """One ncjax.audit per (seed, loss, cost start) over the models not yet in the results (each scanned once,
    no restarts or source check: the rows are the scan's own norms); their rows are appended to the results.
    The audits resume on a rerun: done models are skipped, a cut scan continues from its checkpoint."""
    done = {(r["model"], r["loss"], r["cost_start"], r["seed"], r["preset"]) for r in _rows(results)
            if not r.get("restart", 0)}
    results.parent.mkdir(parents=True, exist_ok=True)
    for seed, loss, cost_start in itertools.product(seeds, losses, cost_starts):  # seeds last to vary
        todo = [name for name in models if (name, loss, cost_start, seed, preset) not in done]
        if not todo:
            continue
        if time.time() > deadline:
            print("deadline reached: no further audits started", flush=True)
            return
        combo = f"{preset}-{loss}-{cost_start}-seed{seed}"
        (work / combo).mkdir(parents=True, exist_ok=True)
        config = getattr(ncjax.ScanConfig, preset)(loss=loss, restarts=1, cost_starts_at_zero=cost_start == "zero")
        scan = ncjax.ScanSettings(config=config, seed=seed, decision=ncjax.DecisionConfig(source_check=0))
        audit = ncjax.audit([write_manifest(todo, work / combo)], out=work / combo / "audit", scan=scan,
                            config=ncjax.AuditConfig(ray=ray),
                            callback=lambda row, combo=combo: print(f"{combo} {row['name']}: "
                                                       f"{row.get('verdict_line') or row.get('error')}", flush=True))
        for audit_row in audit.rows:
            if audit_row["status"] == "done":
                with open(results, "a") as f:
                    f.write(json.dumps(scan_row(audit_row, loss=loss, cost_start=cost_start, seed=seed,
                                                preset=preset)) + "\n")


def _stats(values):
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def summarize(results: Path = RESULTS) -> None:
    rows = [r for r in _rows(results) if not r.get("restart", 0)]  # restart rows: experiments/score.py
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["model"], r["preset"], r["loss"], r["cost_start"], r["device"]), []).append(r)
    out = ["# Real GTSRB models: detection across seeds", "",
           "Command: `.venv/bin/python experiments/real_models.py` (then `--summarize`). Norms are the masks' L1; "
           "'quantized' as the reference's PNGs (its published numbers); anomaly index = |min - median| / MAD; the "
           "reference flags labels below the median with index > 2; ncjax's verdict is the gap rule "
           "(`ncjax.decide`: infected / suspicious / clean). Ratio = second-smallest / smallest norm. Models: "
           "'backdoor' (target 33) and its clean twin on `x_roi`; the clean tutorial models 'nabagata' and "
           "'abis47' on whole frames resized to 30x30. Scan times on the GPU were taken while other jobs shared it.",
           "", "| model | preset | loss | cost starts | seeds | anomaly index (quantized) | anomaly index (exact) | "
           "reference flags, per seed | ncjax verdict, per seed | smallest label per seed | ratio 2nd/1st | "
           "s/scan | device |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (model, preset, loss, cost, device), rs in sorted(groups.items()):
        q = [mad_outliers(r["norms_quantized"], r["labels"]) for r in rs]
        e = [mad_outliers(r["norms"], r["labels"]) for r in rs]
        verdicts = [decide(r["norms_quantized"], r["labels"]) for r in rs]
        smallest = [r["labels"][int(np.argmin(r["norms"]))] for r in rs]
        ratios = [sorted(r["norms"])[1] / sorted(r["norms"])[0] for r in rs]
        out.append(f"| {model} | {preset} | {loss} | {cost} | {len(rs)} | {_stats([v.anomaly_index for v in q])} | "
                   f"{_stats([v.anomaly_index for v in e])} | {'; '.join(str(list(v.flagged)) for v in q)} | "
                   f"{'; '.join(v.status + (str(list(v.labels)) if v.labels else '') for v in verdicts)} | "
                   f"{', '.join(map(str, smallest))} | {_stats(ratios)} | "
                   f"{statistics.mean(r['wall_s'] for r in rs):.0f} | {device} |")
    out += ["", "## Every scan: the reference's three lines (quantized norms) and all 43 norms", ""]
    for r in sorted(rows, key=lambda r: (r["model"], r["preset"], r["loss"], r["cost_start"], r["seed"])):
        lines = mad_outliers(r["norms_quantized"], r["labels"]).lines()
        norms = ", ".join(f"{label}: {norm:.1f}" for label, norm in zip(r["labels"], r["norms_quantized"]))
        out += [f"- **{r['model']}**, {r['preset']}, loss {r['loss']}, cost from {r['cost_start']}, seed {r['seed']}"
                f" ({r['device']}): `{lines[0]}` / `{lines[1]}` / `{lines[2]}`", f"  - norms: {norms}"]
    (ROOT / "experiments" / "real_models.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="backdoor,clean")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--losses", default="reference,crossentropy")
    p.add_argument("--cost-start", default="init")
    p.add_argument("--preset", default="fast")
    p.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file scans are appended to")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no scan after this many seconds")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="scan on a Ray cluster (one task per model) instead of here")
    p.add_argument("--work", type=Path, default=Path("/tmp/ncjax_real_models"), help="the audits' folders")
    p.add_argument("--summarize", action="store_true")
    args = p.parse_args()
    if args.summarize:
        summarize(args.results)
        return 0
    if not REAL.exists():
        print(f"no real data at {REAL}", file=sys.stderr)
        return 2
    run(args.models.split(","), [int(s) for s in args.seeds.split(",")], args.losses.split(","),
        args.cost_start.split(","), args.preset, results=args.results, work=args.work, ray=args.ray,
        deadline=time.time() + args.budget_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
