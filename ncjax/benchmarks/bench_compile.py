"""The benchmark's compile and dispatch parts: a whole scan cold and warm (the persistent compile cache
empty, then filled by the first run), and at every width the compaction visits, one optimizer step per
dispatch against a whole epoch per dispatch (the steps inside one jitted loop)."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ncjax.benchmarks.step_timer import StepTimer
from ncjax.models.classifier import Classifier
from ncjax.scan.plan import default_label_chunk, narrower_widths, per_label_bytes
from ncjax.search.config import ScanConfig


def compaction_widths(model: Classifier, config: ScanConfig) -> list[int]:
    """The widths a scan of every label visits, widest first: the chunk, then powers of two down to the floor."""
    chunk = config.label_chunk or default_label_chunk(jax.default_backend(), model.num_classes,
                                                      per_label_bytes(model, config.batch_size))
    return [chunk] + narrower_widths(chunk, 1, config.min_lane_width or 1)


def measure_dispatch(model: Classifier, images: jax.Array, config: ScanConfig, repeats: int,
                     quick: bool) -> dict[str, Any]:
    """Seconds per optimizer step at each compaction width: one step per call, and a whole epoch
    (config.steps_per_epoch steps) per call; medians of `repeats` epochs, the two interleaved."""
    epoch = config.steps_per_epoch
    widths = compaction_widths(model, config)
    widths = [widths[0], widths[-1]] if quick and len(widths) > 2 else widths
    timer = StepTimer(model, images, config)
    rows = []
    for width in widths:
        compile_one, compile_epoch = timer.compile(width, 1), timer.compile(width, epoch)
        one, whole = [], []
        for _ in range(repeats):
            one.append(sum(timer.call(width, 1) for _ in range(epoch)) / epoch)
            whole.append(timer.call(width, epoch) / epoch)
        rows.append({"width": width, "steps_per_epoch": epoch,
                     "seconds_per_step_one_per_dispatch": statistics.median(one),
                     "seconds_per_step_epoch_per_dispatch": statistics.median(whole),
                     "compile_s_one_per_dispatch": compile_one, "compile_s_epoch_per_dispatch": compile_epoch})
    return {"dispatch": rows}


def cli_scan(model_path: str, data: Path, out: Path, preset: str, flags: list[str]) -> dict[str, Any]:
    """One `python -m ncjax.run` of `model_path` on `data` in a new process (no source check, no progress bar),
    read back from its report.json: process and scan seconds, the compile timings, the work, the verdict and the
    norms; {"error": [the last lines of stderr]} when it wrote no report."""
    command = [sys.executable, "-m", "ncjax.run", "--model", model_path, "--data", str(data), "--out", str(out),
               "--preset", preset, "--source-check", "0", "--no-progress", "--force", *flags]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if not (out / "report.json").exists():
        return {"error": done.stderr.strip().splitlines()[-3:] or ["no report"]}
    report = json.loads((out / "report.json").read_text())
    t = report["timings"]
    return {"process_s": time.perf_counter() - start, "scan_s": t["wall_s"], "compile_s": t["compile_s"],
            "compile_count": t["compile_count"], "compile_background_s": t.get("compile_background_s", 0.0),
            "host_s": t.get("host_s"), "slot_steps": t["slot_steps"], "label_steps": t["label_steps"],
            "verdict_line": report["verdict_line"], "norms": [entry["l1_norm"] for entry in report["labels"]]}


def measure_compile_cache(model_path: str, images: np.ndarray, preset: str, quick: bool) -> dict[str, Any]:
    """`python -m ncjax.run` twice in new processes on one new cache folder: cold (compiles and fills it), warm
    (loads). No source check: the scan alone. On accelerators the same again at the backend's default matmul
    precision (TF32 on NVIDIA GPUs), in a folder of its own. --quick: 2 epochs."""
    if not Path(model_path).is_file():
        return {}
    precisions = {"": "highest"} if jax.default_backend() == "cpu" else {"": "highest", "_tf32": "default"}
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "clean.npz"
        np.savez(data, x=np.asarray(images, np.float32))
        runs = {}
        for suffix, precision in precisions.items():
            cache = Path(work) / f"cache{suffix}"
            flags = ["--compile-cache", str(cache), "--matmul-precision", precision,
                     *(["--max-epochs", "2"] if quick else [])]
            for name in ("cold", "warm"):
                run = cli_scan(model_path, data, Path(work) / f"{name}{suffix}", preset, flags)
                if "error" not in run:
                    run |= {"matmul_precision": precision, "cache_files": len(list(cache.iterdir()))}
                runs[name + suffix] = run
    return {"compile_cache": runs}
