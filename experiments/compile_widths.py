"""Issue 17, item 1: what compiling costs a whole scan, and what a width floor, compiling ahead and the persistent
compile cache save, on the real backdoored GTSRB model (43 labels, seed 0).

    python3 experiments/compile_widths.py [fast|paper] [--no-cache-part] [--rows N]
        # default: fast on CPUs (about 17 minutes on 2 cores), paper on accelerators

1. Each row is `python -m ncjax.run` in a new process with the compile cache off, so every row compiles cold
   (XLA:GPU keeps conv autotuning results per process: a second scan in one process would compile faster
   whatever the settings): min_lane_width 1 without and with compiling ahead, 8, and 64 (above the 43 lanes:
   never compacts, finished lanes masked inside one width). Wall time, seconds waited for the compiler,
   seconds compiled ahead, executables, lanes computed, and whether every norm is the same. The fast preset
   never compacts (every label runs its 30 epochs), so there only the first row is run.
2. Unless --no-cache-part: the benchmark's own part, `python -m ncjax.run` twice sharing a new cache folder:
   cold (compiles, fills the cache) and warm (loads every step).
Appends to experiments/results/compile_widths.jsonl; writes experiments/compile_widths.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax.benchmarks.bench_compile import cli_scan, measure_compile_cache

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("NCJAX_REAL_DATA", ROOT.parent / "shared" / "real"))
MODEL = REAL / "models" / "gtsrb_backdoor_33_logits.h5"
DATA = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"
RESULTS = ROOT / "experiments" / "results" / "compile_widths.jsonl"
DEVICE = (f"{os.cpu_count()}-core CPU" if jax.default_backend() == "cpu"
          else f"{jax.default_backend()}: {jax.devices()[0].device_kind}")
MARKDOWN = ROOT / "experiments" / ("compile_widths.md" if jax.default_backend() == "cpu" else "compile_widths_gpu.md")
ROWS = ((1, False), (8, True), (64, True), (1, True))  # (min_lane_width, compile ahead)


def fresh_process(floor: int, ahead: bool, data: Path, work: Path, preset: str, extra: list[str]) -> dict:
    flags = ["--no-compile-cache", "--min-lane-width", str(floor),
             "--precompile-widths" if ahead else "--no-precompile-widths", *extra]
    run = cli_scan(str(MODEL), data, work / f"floor{floor}_{'ahead' if ahead else 'inline'}", preset, flags)
    return {"part": "floor", "min_lane_width": floor, "compile_ahead": ahead, "device": DEVICE, **run}


def write_markdown(rows: list[dict], preset: str) -> None:
    floors = [r for r in rows if r["part"] == "floor" and "error" not in r]
    cache = [r for r in rows if r["part"] == "cache"]
    same = all(np.array_equal(r["norms"], floors[0]["norms"]) for r in floors)
    spread = max((float(np.max(np.abs(np.subtract(r["norms"], floors[0]["norms"])) / np.asarray(floors[0]["norms"])))
                  for r in floors), default=0.0)
    lines = [f"# Compiling a scan (issue 17, item 1): {DEVICE}", "",
             f"Real backdoored GTSRB model, {preset} preset, 43 labels, seed 0, {DEVICE}, jax {jax.__version__}. "
             f"Command: `experiments/compile_widths.py {preset}`. Each row a new process, compile cache off.", "",
             "| min_lane_width | compile ahead | scan s | waited for the compiler s | compiled ahead s | executables "
             "| lanes computed (slot-steps) | label-steps |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['min_lane_width']} | {'yes' if r['compile_ahead'] else 'no'} | {r['scan_s']:.1f} | "
              f"{r['compile_s']:.2f} | {r['compile_background_s']:.1f} | {r['compile_count']} | {r['slot_steps']} | "
              f"{r['label_steps']} |" for r in floors]
    lines += [f"| {r['min_lane_width']} | {'yes' if r['compile_ahead'] else 'no'} | failed: {r['error']} |"
              for r in rows if r["part"] == "floor" and "error" in r]
    verdicts = sorted({r["verdict_line"] for r in floors})
    lines += ["", f"Every norm identical across the rows: {same} (largest relative difference from the first row "
                  f"{100 * spread:.2f} %); verdicts: {verdicts}." if len(floors) > 1 else
              "The fast preset runs every label its 30 epochs (no early stop), so it never compacts: one width, two "
              "executables (the steps and the epoch's end), nothing for a floor to save."]
    if cache:
        lines += ["", "## Persistent compile cache: `python -m ncjax.run` twice, new processes, one new cache folder",
                  "", "| run | process s | scan s | compile s | executables | files in the cache |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['process_s']:.1f} | {r['scan_s']:.1f} | {r['compile_s']:.2f} | "
                  f"{r['compile_count']} | {r['cache_files']} |" for r in cache if "error" not in r]
    MARKDOWN.write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset", nargs="?", choices=["fast", "paper"],
                   default="fast" if jax.default_backend() == "cpu" else "paper")
    p.add_argument("--no-cache-part", action="store_true", help="leave the cold/warm cache runs to the benchmark")
    p.add_argument("--rows", type=int, default=len(ROWS), help="run only the first N rows")
    p.add_argument("--max-epochs", type=int, help="shorter scans (smoke runs)")
    args = p.parse_args()
    images = ncjax.load_images(str(DATA), (32, 32, 3), key="x_roi").images
    rows: list[dict] = []
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "clean.npz"
        np.savez(data, x=np.asarray(images, np.float32))
        # The fast preset never compacts: one width, nothing to floor or compile ahead.
        for floor, ahead in ROWS[:args.rows] if args.preset == "paper" else ROWS[:1]:
            extra = ["--max-epochs", str(args.max_epochs)] if args.max_epochs else []
            rows.append(fresh_process(floor, ahead, data, Path(work), args.preset, extra))
            print({k: v for k, v in rows[-1].items() if k != "norms"}, flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
            write_markdown(rows, args.preset)
    if not args.no_cache_part:
        for name, run in measure_compile_cache(str(MODEL), images, args.preset, quick=False)["compile_cache"].items():
            rows.append({"part": "cache", "run": name, "device": DEVICE, **run})
            print(rows[-1], flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
    write_markdown(rows, args.preset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
