"""The focused search against the fast preset on the real GTSRB models and the embedded demo pair.

    .venv/bin/python experiments/focused_search.py [--runs backdoor:0,backdoor:1,...] [--presets focused,fast]
    .venv/bin/python experiments/focused_search.py --summarize

Each run is one `scan_model` (the pipeline `python -m ncjax.run` calls: scan, restarts, verdict, source check) of
one model at one key, on this machine's CPU, one run at a time. One JSON line per run goes to
results/focused_search.jsonl as it ends; a rerun skips runs already there. Recorded per run: the verdict, the
score and its candidates, the planted target's rank among the warm-up norms (would the focus have frozen it?),
the focus's roles and shrink, the norms the verdict compared and the source check's norms (so thresholds can be
chosen again without scanning), the time of the scan and of the source check, and the label-steps spent.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

import ncjax
from ncjax import demo
from ncjax.data.images import load_images
from ncjax.pipeline.model_scan import PipelineEvent, scan_model

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "real"
RESULTS = ROOT / "experiments" / "results" / "focused_search.jsonl"
GTSRB = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"
MODELS = {  # name: (model file, data key, planted target)
    "backdoor": (REAL / "models" / "gtsrb_backdoor_33_logits.h5", "x_roi", 33),
    "clean": (REAL / "models" / "gtsrb_clean_logits.h5", "x_roi", None),
    "nabagata": (REAL / "models" / "gtsrb_clean_nabagata_keras224.h5", "x", None),
    "abis47": (REAL / "models" / "gtsrb_clean_abis47_keras260.h5", "x", None),
    "demo": (None, None, 33),
    "demo-clean": (None, None, None),
}
DEFAULT_RUNS = ("backdoor:0,clean:0,nabagata:0,abis47:0,backdoor:1,backdoor:2,backdoor:3,backdoor:4,demo:0,"
                "demo-clean:0")


def _inputs(name: str):
    path, key, target = MODELS[name]
    if path is None:
        images, labels = demo.demo_images()
        return demo.demo_model(infected=name == "demo"), images, labels, target
    model = ncjax.load_model(path)
    clean = load_images(GTSRB, model.input_shape, key=key)
    images, labels = clean.images, clean.labels
    return model, images, labels, target


def _rank(norms: dict[int, float], target: int | None) -> int | None:
    """The target's place among the labels by norm, 1 = smallest."""
    if target is None:
        return None
    return 1 + sum(1 for label, norm in norms.items() if norm < norms[target])


def run_one(name: str, seed: int, preset: str) -> dict:
    model, images, labels, target = _inputs(name)
    config = getattr(ncjax.ScanConfig, preset)()
    stages: dict[str, float] = {}

    def on_event(event: PipelineEvent) -> None:
        if event.progress is None and event.preflight is None:
            stages.setdefault(event.stage, time.perf_counter())

    start = time.perf_counter()
    outcome = scan_model(model, images, labels, key=jax.random.key(seed), config=config, callback=on_event)
    wall = time.perf_counter() - start
    verdict, focus = outcome.verdict, outcome.focus
    check_s = wall - (stages["source-check"] - start) if "source-check" in stages else 0.0
    warm = None if focus is None else dict(zip(focus.labels.tolist(), focus.warmup_norms.tolist()))
    score = verdict.score
    assert score is not None  # the default rule is the score
    return {
        "model": name, "seed": seed, "preset": preset, "target": target, "verdict": verdict.status,
        "labels": list(verdict.labels), "line": verdict.line(), "score": score.score, "top_label": score.top_label,
        "candidates": list(score.candidates), "natural": list(verdict.natural),
        "found_alone": target is not None and verdict.infected and list(verdict.labels) == [target],
        "target_rank_final": _rank(dict(zip(score.labels.tolist(), score.norms.tolist())), target),
        "target_rank_warmup": None if warm is None else _rank(warm, target),
        "roles": None if focus is None else dict(zip(map(str, focus.labels.tolist()), focus.roles)),
        "shrink": None if focus is None else focus.shrink,
        "focus_line": None if focus is None else focus.line(),
        "target_epochs": None if focus is None or target is None else int(focus.epochs[focus.labels == target][0]),
        "norms": verdict.mad.norms.tolist(), "norm_labels": verdict.mad.labels.tolist(),
        "sources": [{"label": c.label, "label_norm": c.label_norm, "sources": list(c.sources),
                     "norms": [None if v != v else v for v in c.norms]} for c in verdict.sources],
        "wall_s": wall, "scan_s": outcome.result.wall_time_s, "source_check_s": check_s,
        "label_steps": outcome.result.label_steps, "machine": "2-core AMD EPYC CPU",
    }


def summarize() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    print("| model | seed | preset | verdict | score | target rank (warm-up, final) | shrink | scan s | check s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        named = ", ".join(map(str, r["labels"]))
        rank = f"{r['target_rank_warmup'] or '-'}, {r['target_rank_final'] or '-'}" if r["target"] is not None else "-"
        shrink = f"{r['shrink']:.2f}" if r["shrink"] else "-"
        print(f"| {r['model']} | {r['seed']} | {r['preset']} | {r['verdict']} {named} | {r['score']:.2f} | {rank} | "
              f"{shrink} | {r['scan_s']:.0f} | {r['source_check_s']:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="model:seed pairs, comma-separated")
    parser.add_argument("--presets", default="focused", help="comma-separated presets")
    parser.add_argument("--summarize", action="store_true")
    args = parser.parse_args()
    if args.summarize:
        summarize()
        return 0
    done = set()
    if RESULTS.exists():
        done = {(r["model"], r["seed"], r["preset"]) for r in map(json.loads, RESULTS.read_text().splitlines())}
    for preset in args.presets.split(","):
        for item in args.runs.split(","):
            name, seed = item.split(":")
            if (name, int(seed), preset) in done:
                continue
            row = run_one(name, int(seed), preset)
            print(json.dumps({k: row[k] for k in ("model", "seed", "preset", "line", "wall_s", "target_rank_warmup")}),
                  flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
