"""The maximum-margin statistic on the real GTSRB models and the demo, at five seeds, through the engine's margin
search (ncjax.scan_margins at ScanConfig.margin(): 4 random starts per label, 150 Adam steps each) and
ncjax.margin_score. Needs ../shared/real; one JSON line per (model, seed) to results/real_margins.jsonl.

    .venv/bin/python experiments/real_margins.py [--seeds 0,1,2,3,4]
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
from ncjax import demo

REAL = Path(__file__).resolve().parents[2] / "shared" / "real" / "models"
OUT = Path(__file__).parent / "results" / "real_margins.jsonl"
MODELS = {
    "real backdoored at 33": lambda: ncjax.load_model(REAL / "gtsrb_backdoor_33_logits.h5"),
    "real clean twin": lambda: ncjax.load_model(REAL / "gtsrb_clean_logits.h5"),
    "real clean nabagata": lambda: ncjax.load_model(REAL / "gtsrb_clean_nabagata_keras224.h5"),
    "real clean abis47": lambda: ncjax.load_model(REAL / "gtsrb_clean_abis47_keras260.h5"),
    "demo backdoored at 33": lambda: demo.demo_model(),
    "demo clean twin": lambda: demo.demo_model(infected=False),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    done = {(r["model"], r["seed"]) for r in map(json.loads, OUT.read_text().splitlines())} if OUT.exists() else set()
    for name, load in MODELS.items():
        model = load()
        for seed in map(int, args.seeds.split(",")):
            if (name, seed) in done:
                continue
            start = time.perf_counter()
            result = ncjax.scan_margins(model, key=jax.random.key(seed))
            best = result.per_label()
            score = ncjax.margin_score(best.margins, best.labels)
            order = np.argsort(-best.margins)
            row = {"model": name, "seed": seed, "top": score.top_label, "p_value": score.p_value,
                   "ratio": round(score.ratio, 3), "margins": [round(float(v), 3) for v in best.margins],
                   "largest": [[int(best.labels[i]), round(float(best.margins[i]), 1)] for i in order[:4]],
                   "seconds": round(time.perf_counter() - start, 1),
                   "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}"}
            with open(OUT, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps({k: v for k, v in row.items() if k != "margins"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
