"""Issue 17, item 3: does TF32 change a verdict? Each model scanned twice with the same key, full float32
(`matmul_precision="highest"`, today's default) and the backend's default (TF32 on NVIDIA GPUs); norms, labels
named and verdicts compared. Meaningful on a GPU only: CPUs compute float32 either way.

    python3 experiments/tf32_verdicts.py [--models backdoor,clean,nabagata,abis47,demo,demo-clean]
        [--preset paper] [--max-epochs N] [--results PATH]

Appends one JSON line per model to the results (default experiments/results/tf32_verdicts.jsonl).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax import demo
from ncjax.verdict.outlier import l1_norms

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("NCJAX_REAL_DATA", ROOT.parent / "shared" / "real"))
GTSRB = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"
MODELS = {  # name: (model file, image key)
    "backdoor": (REAL / "models" / "gtsrb_backdoor_33_logits.h5", "x_roi"),
    "clean": (REAL / "models" / "gtsrb_clean_logits.h5", "x_roi"),
    "nabagata": (REAL / "models" / "gtsrb_clean_nabagata_keras224.h5", "x"),
    "abis47": (REAL / "models" / "gtsrb_clean_abis47_keras260.h5", "x"),
    "demo": (demo.demo_model_path(infected=True), None),
    "demo-clean": (demo.demo_model_path(infected=False), None),
}


def images_for(name: str, model) -> np.ndarray:
    file, key = MODELS[name]
    if key is None:
        return demo.demo_images()[0]
    return ncjax.load_images(str(GTSRB), model.input_shape, key=key).images  # raw pixels: the models take them


def scan(model, images, config) -> dict:
    start = time.perf_counter()
    result = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0))
    norms = l1_norms(result.masks, quantize=True)
    verdict = ncjax.decide(norms, result.labels, reached=result.reached_threshold)
    return {"norms": [float(v) for v in result.l1_norms], "verdict": verdict.status,
            "labels_named": [int(v) for v in verdict.labels], "line": verdict.line(),
            "wall_s": time.perf_counter() - start, "compile_s": result.compile_time_s}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--preset", default="paper", choices=["paper", "fast"])
    p.add_argument("--max-epochs", type=int, help="shorter scans (smoke runs)")
    p.add_argument("--results", type=Path, default=ROOT / "experiments" / "results" / "tf32_verdicts.jsonl")
    args = p.parse_args()
    device = f"{jax.default_backend()}: {jax.devices()[0].device_kind}"
    for name in args.models.split(","):
        model = ncjax.load_model(MODELS[name][0])
        images = images_for(name, model)
        base = getattr(ncjax.ScanConfig, args.preset)(**({"max_epochs": args.max_epochs} if args.max_epochs else {}))
        runs = {precision: scan(model, images, base.replace(matmul_precision=precision))
                for precision in ("highest", "default")}
        a, b = (np.asarray(runs[k]["norms"]) for k in ("highest", "default"))
        row = {"model": name, "device": device, "preset": args.preset, "max_epochs": base.max_epochs,
               "same_verdict": runs["highest"]["verdict"] == runs["default"]["verdict"],
               "same_labels_named": runs["highest"]["labels_named"] == runs["default"]["labels_named"],
               "max_relative_norm_difference": float(np.max(np.abs(a - b) / np.maximum(a, 1e-9))), **runs}
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name} on {device}: float32 {runs['highest']['line']} | TF32 {runs['default']['line']} | "
              f"norms differ by up to {100 * row['max_relative_norm_difference']:.1f} %", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
