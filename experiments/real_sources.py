"""The source-specific check on the real GTSRB models' scans: what the default verdict runs after a first pass.

    .venv/bin/python experiments/real_sources.py [--seeds 0,1,2,3,4] [--models backdoor,clean,nabagata,abis47]

For every fast-preset, reference-loss scan in results/real_models.jsonl whose score names candidates (ratio >=
ncjax.verdict.score.DEFAULT_MIN_RATIO), the candidates (up to 3, largest ratio first) get the check the CLI runs: one
trigger from each of 8 other classes, same seed. One JSON line per scan goes to results/real_sources.jsonl.
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
from ncjax.scan.sources import check_candidates
from ncjax.verdict.score import ratio_score
from ncjax.verdict.source_check import CHECKED_CANDIDATES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from planted_sweep import _append
from real_models import MODELS, REAL, RESULTS, _rows

OUT = RESULTS.parent / "real_sources.jsonl"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--models", default="backdoor,clean,nabagata,abis47")
    p.add_argument("--restarts", type=int, default=1, choices=[1, 2],
                   help="2: read each label's smaller norm of restarts 0 and 1 (scans with a --restart 1 row only)")
    args = p.parse_args()
    seeds, models = [int(v) for v in args.seeds.split(",")], args.models.split(",")
    out_path = OUT if args.restarts == 1 else OUT.with_name("real_sources_2restarts.jsonl")
    second = {(r["model"], r["seed"]): r["norms_quantized"] for r in _rows(RESULTS) if r.get("restart", 0) == 1
              and (r["preset"], r["loss"], r["cost_start"]) == ("fast", "reference", "init")}
    done = {(r["model"], r["seed"]) for r in _rows(out_path)}
    data = np.load(REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz")
    for row in _rows(RESULTS):
        if (row["preset"], row["loss"], row["cost_start"]) != ("fast", "reference", "init") or row["device"] \
                .startswith("gpu") or row["model"] not in models or row["seed"] not in seeds:
            continue
        if (row["model"], row["seed"]) in done or row.get("restart", 0):
            continue
        norms = row["norms_quantized"]
        if args.restarts == 2:
            if (row["model"], row["seed"]) not in second:
                continue
            norms = [min(a, b) for a, b in zip(norms, second[(row["model"], row["seed"])])]
        score = ratio_score(norms, row["labels"])
        candidates = score.candidates[:CHECKED_CANDIDATES]
        checks, seconds = (), 0.0
        if candidates:
            file, key, _ = MODELS[row["model"]]
            model = ncjax.load_model(REAL / "models" / file)
            start = time.perf_counter()
            images = data[key].astype(np.float32)
            if images.shape[1:] != model.input_shape:  # as real_models.py scans them
                images = np.asarray(jax.image.resize(images, (len(images), *model.input_shape), "bilinear"))
            checks = check_candidates(model, images, data["y"], score, config=ncjax.ScanConfig.fast(),
                                      key=jax.random.key(row["seed"]))
            seconds = time.perf_counter() - start
        out = {"model": row["model"], "seed": row["seed"], "restarts": args.restarts, "candidates": list(candidates),
               "seconds": round(seconds, 1),
               "sources": [{"label": c.label, "label_norm": c.label_norm, "sources": list(c.sources),
                            "norms": [None if v != v else round(v, 4) for v in c.norms]} for c in checks]}
        _append(out_path, out)
        print(json.dumps({k: out[k] for k in ("model", "seed", "candidates", "seconds")}),
              [(c.label, round(c.spread, 2)) for c in checks], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
