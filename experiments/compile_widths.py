"""Issue 17, items 1-2 on the CPU: what compiling costs a whole scan, and what a width floor and the persistent
compile cache save, on the real backdoored GTSRB model (fast preset, 43 labels, seed 0).

    .venv/bin/python experiments/compile_widths.py [fast|paper]   # default: fast on CPUs (about 17 minutes on
                                                                  # 2 cores), paper on accelerators

1. In this process, cache off: min_lane_width 1 (today's compaction down to one lane), 8, and 64 (above the 43
   lanes: never compacts, finished lanes masked inside one width): wall time, compile seconds and count, lanes
   computed, and whether every norm is the same. The fast preset never compacts (every label runs its 30
   epochs), so there only the first is run.
2. `python -m ncjax.run` twice in fresh processes sharing a new cache folder: cold (compiles, fills the cache)
   and warm (loads every step).
Writes experiments/results/compile_widths.jsonl and experiments/compile_widths.md.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax.bench_compile import measure_compile_cache

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("NCJAX_REAL_DATA", ROOT.parent / "shared" / "real"))
MODEL = REAL / "models" / "gtsrb_backdoor_33_logits.h5"
DATA = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"
RESULTS = ROOT / "experiments" / "results" / "compile_widths.jsonl"
DEVICE = (f"{os.cpu_count()}-core CPU" if jax.default_backend() == "cpu"
          else f"{jax.default_backend()}: {jax.devices()[0].device_kind}")
FLOORS = (1, 8, 64)


def in_process(floor: int, model, images, preset: str) -> dict:
    ncjax.disable_compile_cache()
    start = time.perf_counter()
    result = ncjax.scan_all_labels(model, images, config=getattr(ncjax.ScanConfig, preset)(min_lane_width=floor),
                                   key=jax.random.key(0))
    return {"part": "floor", "min_lane_width": floor, "wall_s": time.perf_counter() - start,
            "compile_s": result.compile_time_s, "compile_count": result.compile_count,
            "slot_steps": result.slot_steps, "label_steps": result.label_steps,
            "norms": [float(v) for v in result.l1_norms]}


def write_markdown(rows: list[dict], preset: str) -> None:
    floors = [r for r in rows if r["part"] == "floor"]
    cache = [r for r in rows if r["part"] == "cache"]
    same = all(np.array_equal(r["norms"], floors[0]["norms"]) for r in floors)
    lines = ["# Compiling a scan on the CPU (issue 17, items 1-2)", "",
             f"Real backdoored GTSRB model, {preset} preset, 43 labels, seed 0, {DEVICE}, jax "
             f"{jax.__version__}. Command: `.venv/bin/python experiments/compile_widths.py`.", "",
             "## Width floor (`min_lane_width`), compile cache off", "",
             "| min_lane_width | wall s | compile s | executables | lanes computed (slot-steps) | label-steps |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['min_lane_width']} | {r['wall_s']:.1f} | {r['compile_s']:.2f} | {r['compile_count']} | "
              f"{r['slot_steps']} | {r['label_steps']} |" for r in floors]
    lines += ["", f"Every norm identical across the floors: {same}." if len(floors) > 1 else
              "The fast preset runs every label its 30 epochs (no early stop), so it never compacts: one width, two "
              "executables (the steps and the epoch's end), nothing for a floor to save.", "",
              "## Persistent compile cache: `python -m ncjax.run` twice, new processes, one new cache folder", "",
              "| run | process s | scan s | compile s | executables | files in the cache |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['process_s']:.1f} | {r['scan_s']:.1f} | {r['compile_s']:.2f} | {r['compile_count']} | "
              f"{r['cache_files']} |" for name, r in zip(("cold", "warm"), cache)]
    if len(cache) == 2:
        lines += ["", f"Same verdict both times: {cache[0]['verdict_line'] == cache[1]['verdict_line']}."]
    (ROOT / "experiments" / "compile_widths.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    preset = sys.argv[1] if len(sys.argv) > 1 else ("fast" if jax.default_backend() == "cpu" else "paper")
    model = ncjax.load_model(MODEL)
    images = np.load(DATA)["x_roi"].astype(np.float32)
    rows = []
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("")
    # The fast preset runs every label its 30 epochs (no early stop, so no compaction): one width, nothing to
    # floor. The floors matter for the paper preset, where labels stop from epoch 1 to 1000.
    for floor in FLOORS if preset == "paper" else (1,):
        rows.append(in_process(floor, model, images, preset))
        print({k: v for k, v in rows[-1].items() if k != "norms"}, flush=True)
    # The benchmark's own part: python -m ncjax.run twice in new processes sharing one new cache folder.
    runs = measure_compile_cache(str(MODEL), images, preset, quick=False)["compile_cache"]
    for name in ("cold", "warm"):
        rows.append({"part": "cache", **runs[name]})
        print(name, rows[-1], flush=True)
    with open(RESULTS, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    write_markdown(rows, preset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
