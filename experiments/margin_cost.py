"""What the maximum-margin search adds to a scan: its wall time beside the fast preset's trigger scan, on the real
backdoored GTSRB model (43 labels, 32x32x3, x_roi images), each alone on this machine; the margin search three
times (median quoted). Needs ../shared/real; writes results/margin_cost.json.

    .venv/bin/python experiments/margin_cost.py
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

import ncjax

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
OUT = Path(__file__).parent / "results" / "margin_cost.json"


def main() -> int:
    model = ncjax.load_model(REAL / "models" / "gtsrb_backdoor_33_logits.h5")
    images = np.load(REAL / "gtsrb" / "gtsrb_test_32x32_small_20perclass.npz")["x_roi"].astype(np.float32)
    start = time.perf_counter()
    scan = ncjax.scan_all_labels(model, images, config=ncjax.ScanConfig.fast(), key=jax.random.key(0))
    trigger_s = time.perf_counter() - start
    margin_s = []
    for seed in range(3):
        start = time.perf_counter()
        ncjax.scan_margins(model, images, key=jax.random.key(seed))
        margin_s.append(time.perf_counter() - start)
    row = {"trigger_scan_fast_s": round(trigger_s, 1), "trigger_compile_s": round(scan.compile_time_s, 1),
           "margin_search_s": [round(v, 1) for v in margin_s], "margin_median_s": round(float(np.median(margin_s)), 1),
           "share_of_fast_scan": round(float(np.median(margin_s)) / trigger_s, 3),
           "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}"}
    OUT.write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
