"""The benchmark's compile and dispatch parts (issue 17): a whole scan cold and warm (the persistent compile cache
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

from ncjax.classifier import Classifier
from ncjax.config import ScanConfig
from ncjax.plan import default_label_chunk, narrower_widths, per_label_bytes
from ncjax.step_timer import StepTimer


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
            for name in ("cold", "warm"):
                out = Path(work) / f"{name}{suffix}"
                command = [sys.executable, "-m", "ncjax.run", "--model", model_path, "--data", str(data), "--out",
                           str(out), "--preset", preset, "--source-check", "0", "--no-progress", "--force",
                           "--compile-cache", str(cache), "--matmul-precision", precision,
                           *(["--max-epochs", "2"] if quick else [])]
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                if not (out / "report.json").exists():
                    runs[name + suffix] = {"error": done.stderr.strip().splitlines()[-1:] or ["no report"]}
                    continue
                report = json.loads((out / "report.json").read_text())
                timings = report["timings"]
                runs[name + suffix] = {
                    "process_s": time.perf_counter() - start, "scan_s": timings["wall_s"], "matmul_precision": precision,
                    "compile_s": timings["compile_s"], "compile_count": timings["compile_count"],
                    "compile_background_s": timings.get("compile_background_s", 0.0), "host_s": timings.get("host_s"),
                    "verdict_line": report["verdict_line"], "cache_files": len(list(cache.iterdir()))}
    return {"compile_cache": runs}
