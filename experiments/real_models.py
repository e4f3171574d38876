"""Detection quality on the real GTSRB models in ../shared/real, across seeds, losses and cost starts.

    .venv/bin/python experiments/real_models.py [--models backdoor,clean,nabagata,abis47] [--seeds 0,1,2]
        [--losses reference,crossentropy] [--cost-start init,zero] [--preset fast]
    .venv/bin/python experiments/real_models.py --summarize

Each scan appends one JSON line to experiments/results/real_models.jsonl as soon as it finishes (nothing is
lost when a long run is stopped; finished combinations are skipped when rerun), and --summarize writes
experiments/real_models.md. Fast preset: about 3.6 minutes per scan on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ncjax
from ncjax.outlier import l1_norms, mad_outliers
from ncjax.verdict import decide

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


def run(models, seeds, losses, cost_starts, preset, *, results: Path = RESULTS, deadline: float = float("inf"),
        restart: int = 0) -> None:
    """Scan every combination; restart K > 0 scans only each label's K-th restart (restart 0 is the plain scan,
    so rows of restarts 0..R-1 together are a scan with R restarts)."""
    data = np.load(REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz")
    done = {(r["model"], r["loss"], r["cost_start"], r["seed"], r["preset"], r.get("restart", 0))
            for r in _rows(results)}
    results.parent.mkdir(parents=True, exist_ok=True)
    for seed, name, loss, cost_start in itertools.product(seeds, models, losses, cost_starts):  # seeds last to vary
        if (name, loss, cost_start, seed, preset, restart) in done:
            continue
        if time.time() > deadline:
            print("deadline reached: no further scans started", flush=True)
            return
        file, key, target = MODELS[name]
        model = ncjax.load_model(REAL / "models" / file)
        images = data[key].astype(np.float32)
        if images.shape[1:] != model.input_shape:
            images = np.asarray(jax.image.resize(jnp.asarray(images), (len(images), *model.input_shape), "bilinear"))
        config = getattr(ncjax.ScanConfig, preset)(loss=loss, cost_starts_at_zero=cost_start == "zero")
        start = time.perf_counter()
        slots = [ncjax.Slot(target=label, restart=restart) for label in range(model.num_classes)]
        result = ncjax.scan_slots(model, images, slots, config=config, key=jax.random.key(seed))
        row = {"model": name, "loss": loss, "cost_start": cost_start, "seed": seed, "preset": preset,
               **({"restart": restart} if restart else {}),
               "target": target, "wall_s": round(time.perf_counter() - start, 1), "labels": result.labels.tolist(),
               "norms": [round(float(v), 4) for v in result.l1_norms],
               "norms_quantized": [round(float(v), 4) for v in l1_norms(result.masks, quantize=True)],
               "reached": result.reached_threshold.tolist(), "epochs": result.epochs.tolist(),
               "label_steps": result.label_steps, "device": _device(), "compile_s": round(result.compile_time_s, 1)}
        with open(results, "a") as f:  # several processes may share one file: one locked write per line
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(row) + "\n")
            fcntl.flock(f, fcntl.LOCK_UN)
        verdict = mad_outliers(row["norms_quantized"], result.labels)
        print(f"{name} {loss} cost@{cost_start} seed {seed}: flagged {verdict.flagged}, anomaly index "
              f"{verdict.anomaly_index:.2f} ({row['wall_s']} s)", flush=True)


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
    p.add_argument("--restart", type=int, default=0, help="scan only this restart of every label (0: the plain scan)")
    p.add_argument("--summarize", action="store_true")
    args = p.parse_args()
    if args.summarize:
        summarize(args.results)
        return 0
    if not REAL.exists():
        print(f"no real data at {REAL}", file=sys.stderr)
        return 2
    run(args.models.split(","), [int(s) for s in args.seeds.split(",")], args.losses.split(","),
        args.cost_start.split(","), args.preset, results=args.results, deadline=time.time() + args.budget_s,
        restart=args.restart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
