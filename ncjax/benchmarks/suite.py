"""`make bench` / `python -m ncjax.bench`: all labels at once against one label at a time, against the machine.

Measures, in one run on one device: (1) optimizer-step throughput of the scan's default chunking, of one
all-labels vmap per call and of the sequential baseline (one label per call, the way the reference and its peers
scan), interleaved, medians after warm-up; (2) the step's FLOPs from XLA's cost analysis beside a hand count, the
achieved FLOP/s and its fraction of a large float32 matmul's; (3) a whole scan to a verdict and the work early
stopping and compaction saved; (4) time per label-step and memory as the label count grows; (5) at each width
the compaction visits, one step per dispatch against a whole epoch per dispatch; (6) a whole scan in a new
process twice, with the persistent compile cache empty and then filled. Prints a table and writes bench.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.benchmarks.bench_compile import measure_compile_cache, measure_dispatch
from ncjax.benchmarks.step_timer import StepTimer
from ncjax.errors import UsageError
from ncjax.models.classifier import Classifier
from ncjax.scan.engine import scan_all_labels
from ncjax.scan.plan import default_label_chunk, per_label_bytes
from ncjax.scan.sources import check_candidates
from ncjax.search.config import ScanConfig, device_preset
from ncjax.verdict.decision import decide
from ncjax.verdict.outlier import l1_norms
from ncjax.verdict.source_check import SourceCheck

# The real data lies beside the checkout (as CI lays it); NCJAX_REAL_DATA points elsewhere, as in the tests.
REAL = Path(os.environ.get("NCJAX_REAL_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "real"))
REAL_MODEL = REAL / "models" / "gtsrb_backdoor_33_logits.h5"
REAL_DATA = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def _flops(executable) -> float | None:
    analysis = executable.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else {}
    value = (analysis or {}).get("flops")
    return float(value) if value else None


def hand_count_flops(model: Classifier, batch: int) -> float:
    """Forward FLOPs of the network (2 per multiply-add, convolutions and dense layers) x 2 for the backward
    pass to the input (no weight gradients are needed), times the batch: one label-step."""
    total = 0.0
    for layer in model.layers:
        shape = layer.output_shape
        if layer.class_name == "Conv2D":
            params = _params_of(model.params, layer.path)
            kh, kw, cin, cout = params["kernel"].shape
            total += 2 * shape[1] * shape[2] * kh * kw * cin * cout
        elif layer.class_name == "Dense":
            fan_in, units = _params_of(model.params, layer.path)["kernel"].shape
            total += 2 * fan_in * units
    return 2 * total * batch


def _params_of(params, path: str):
    for part in path.split("/"):
        params = params[part]
    return params


def matmul_flops_per_s(n: int, repeats: int) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / _median(times)


def _small_network(num_classes: int) -> Classifier:
    """A small conv net (16x16x3) with a head of any size, for scaling the label count."""
    rng = np.random.default_rng(0)
    params = {"conv": {"kernel": jnp.asarray(rng.normal(0, 0.1, (3, 3, 3, 8)), jnp.float32)},
              "dense": {"kernel": jnp.asarray(rng.normal(0, 0.05, (8 * 8 * 8, num_classes)), jnp.float32)}}

    def apply(p, x):
        y = jax.lax.conv_general_dilated(x, p["conv"]["kernel"], (2, 2), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y).reshape(x.shape[0], -1) @ p["dense"]["kernel"]

    return Classifier(apply=apply, params=params, input_shape=(16, 16, 3), num_classes=num_classes,
                      output_activation="linear")


PARTS = ("throughput", "precision", "flops", "scaling", "dispatch", "compile-cache", "end-to-end")


def benchmark(*, model: Classifier, images: np.ndarray, model_name: str, preset: str = "auto", repeats: int = 5,
              quick: bool = False, end_to_end: bool = True, labels: np.ndarray | None = None,
              only: Sequence[str] | None = None, log: Callable[[str], None] = print,
              save: Callable[[dict[str, Any]], None] = lambda report: None) -> dict[str, Any]:
    """Run the measurements (`only`: some of PARTS; flops brings throughput along); `save(report)` is called after
    each part, so a stopped run keeps what it measured."""
    unknown = sorted(set(only or ()) - set(PARTS))
    if unknown:
        raise UsageError(f"unknown benchmark part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}.")
    chosen = set(only or PARTS) | ({"throughput"} if "flops" in (only or ()) else set())
    preset = preset if preset != "auto" else device_preset()
    config = getattr(ScanConfig, preset)()
    images_dev = jax.device_put(jnp.asarray(images, jnp.float32))
    report = _environment(model_name, model.num_classes, config, preset, repeats)
    timer = StepTimer(model, images_dev, config)
    parts: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("throughput", lambda: measure_throughput(timer, repeats)),
        ("precision", lambda: measure_precision(model, images_dev, config, repeats)),
        ("flops", lambda: measure_flops(timer, report["throughput"], repeats, quick)),
        ("scaling", lambda: measure_scaling(config, repeats, quick)),
        ("dispatch", lambda: measure_dispatch(model, images_dev, config, repeats, quick)),
        ("compile-cache", lambda: measure_compile_cache(model_name, images, preset, quick)),
    ]
    if end_to_end:
        parts.append(("end-to-end", lambda: measure_end_to_end(model, images, config, preset, quick, log,
                                                               labels=labels)))
    for name, measure in parts:
        if name not in chosen:
            continue
        report |= measure()
        log(f"{name} measured")
        save(report)
    return report


def _environment(model_name: str, labels: int, config: ScanConfig, preset: str, repeats: int) -> dict[str, Any]:
    return {
        "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(), "devices": len(jax.devices()),
        "jax": jax.__version__, "jaxlib": getattr(jax.lib, "__version__", None) or _jaxlib_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "model": model_name, "labels": labels, "batch_size": config.batch_size,
        "preset": preset, "repeats": repeats,
    }


def measure_throughput(timer: StepTimer, repeats: int) -> dict[str, Any]:
    """(a) the scan's default chunking, (b) one all-labels vmap per call, (c) one label per call; interleaved."""
    labels, config = timer.model.num_classes, timer.config
    chunk = default_label_chunk(jax.default_backend(), labels, per_label_bytes(timer.model, config.batch_size))
    compile_s = {w: timer.compile(w) for w in sorted({1, chunk, labels})}
    for w in compile_s:  # warm-up beyond the first call
        timer.call(w)
    chunks = [min(chunk, labels - i) for i in range(0, labels, chunk)]
    for w in set(chunks) - set(compile_s):
        compile_s[w] = timer.compile(w)
    per_round: dict[str, list[float]] = {"a_default_chunking": [], "b_all_labels_vmap": [], "c_sequential": []}
    for _ in range(repeats):
        per_round["a_default_chunking"].append(sum(timer.call(w) for w in chunks))
        per_round["b_all_labels_vmap"].append(timer.call(labels))
        per_round["c_sequential"].append(sum(timer.call(1) for _ in range(labels)))
    throughput = {}
    for name, times in per_round.items():
        seconds = _median(times)
        throughput[name] = {"seconds_per_step_of_all_labels": seconds, "label_steps_per_s": labels / seconds,
                            "images_per_s": labels * config.batch_size / seconds}
    base = throughput["c_sequential"]["label_steps_per_s"]
    return {"throughput": throughput, "default_label_chunk": chunk,
            "ratio_a_over_c": throughput["a_default_chunking"]["label_steps_per_s"] / base,
            "ratio_b_over_c": throughput["b_all_labels_vmap"]["label_steps_per_s"] / base,
            "compile_seconds_by_width": {str(k): v for k, v in compile_s.items()}}


def measure_precision(model: Classifier, images: jax.Array, config: ScanConfig, repeats: int) -> dict[str, Any]:
    """The all-labels step in full float32 ("highest", as the reference) and at the backend's default (TF32 on
    GPUs), interleaved. Nothing on CPUs, which compute float32 either way."""
    if jax.default_backend() == "cpu":
        return {}
    labels = model.num_classes
    timers = {name: StepTimer(model, images, config.replace(matmul_precision=name)) for name in ("default", "highest")}
    for t in timers.values():
        t.compile(labels)
        t.call(labels)
    rounds: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, t in timers.items():
            rounds[name].append(t.call(labels))
    return {"precision": {name: {"label_steps_per_s": labels / _median(times)} for name, times in rounds.items()}}


def measure_flops(timer: StepTimer, throughput: dict[str, Any], repeats: int, quick: bool) -> dict[str, Any]:
    """XLA's FLOPs for the all-labels step, a hand count, and a large matmul's rate at the step's precision."""
    model, config, labels = timer.model, timer.config, timer.model.num_classes
    xla = _flops(timer.executable(labels))
    hand = hand_count_flops(model, config.batch_size) * labels if model.layers else None
    with jax.default_matmul_precision(config.matmul_precision):  # float32 compared with float32, not TF32
        matmul = matmul_flops_per_s(1024 if quick else 2048, repeats)
    # The hand count first: XLA:GPU's cost analysis leaves out convolutions that run as cuDNN calls
    # (measured on an H200: 0.8 GFLOP counted of 137 per step); on CPUs the two agree within 3 %.
    achieved = (hand or xla or 0) / throughput["b_all_labels_vmap"]["seconds_per_step_of_all_labels"]
    return {"flops": {"xla_per_all_labels_step": xla, "hand_count_per_all_labels_step": hand,
                      "achieved_flops_per_s_all_labels_vmap": achieved, "matmul_flops_per_s": matmul,
                      "fraction_of_matmul": achieved / matmul}}


def measure_scaling(config: ScanConfig, repeats: int, quick: bool) -> dict[str, Any]:
    """Seconds per label-step and memory as the label count grows, on a small network."""
    scaling = []
    for heads in (1, 8, 43) if quick else (1, 8, 43, 256, 1000):
        small = _small_network(max(heads, 2))
        small_images = jax.random.uniform(jax.random.key(2), (256, 16, 16, 3)) * 255
        t = StepTimer(small, small_images, config)
        compile_time = t.compile(heads)
        times = [t.call(heads) for _ in range(max(repeats, 3))]
        memory = t.executable(heads).memory_analysis()
        stats = jax.devices()[0].memory_stats() or {}
        scaling.append({
            "labels": heads, "seconds_per_label_step": _median(times) / heads, "compile_s": compile_time,
            "xla_temp_bytes": getattr(memory, "temp_size_in_bytes", None),
            "xla_argument_bytes": getattr(memory, "argument_size_in_bytes", None),
            "peak_device_bytes": stats.get("peak_bytes_in_use"),
        })
    return {"scaling_small_network": scaling}


def measure_end_to_end(model: Classifier, images: np.ndarray, config: ScanConfig, preset: str, quick: bool,
                       log: Callable[[str], None], *, labels: np.ndarray | None = None) -> dict[str, Any]:
    """A whole scan to the verdict users get: the first pass (the MAD test's inputs, before any source check) and the
    source-specific check of the score's candidates (when the images carry labels), and the work early stopping
    and compaction saved."""
    config = config if not quick else config.replace(max_epochs=2)

    def progress(p) -> None:
        if p.epoch % 50 == 0:
            log(f"  epoch {p.epoch}: {p.labels_done}/{p.labels_total} labels done ({p.elapsed_s:.0f} s)")

    start = time.perf_counter()
    result = scan_all_labels(model, images, config=config, key=jax.random.key(0), callback=progress)
    norms = l1_norms(result.masks, quantize=True)
    first = decide(norms, result.labels, reached=result.reached_threshold)
    first_s = time.perf_counter() - start
    gap = decide(norms, result.labels, reached=result.reached_threshold, rule="gap")
    checks: tuple[SourceCheck, ...] = ()
    if first.score is not None and labels is not None:
        checks = check_candidates(model, images, labels, first.score, config=config, key=jax.random.key(0),
                                  callback=progress)
    verdict = decide(norms, result.labels, reached=result.reached_threshold, sources=checks)
    wall = time.perf_counter() - start
    without = len(result.labels) * config.max_epochs * config.steps_per_epoch
    return {"end_to_end": {
        "preset": preset if not quick else f"{preset} (2 epochs, --quick)", "wall_s": wall,
        "first_pass_s": first_s, "source_check_s": wall - first_s, "source_checked": [c.label for c in checks],
        "compile_s": result.compile_time_s, "label_steps_run": result.label_steps,
        "slot_steps_computed": result.slot_steps, "label_steps_without_early_stop": without,
        "work_saved_fraction": 1 - result.slot_steps / without, "verdict": verdict.status,
        "verdict_labels": list(verdict.labels), "verdict_line": verdict.line(), "flagged": list(verdict.mad.flagged),
        "gap_rule_verdict_line": gap.line(), "anomaly_index": verdict.mad.anomaly_index, "lines": verdict.mad.lines(),
    }}


def _jaxlib_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"device: {report['device']} ({report['platform']}, {report['cpu_count']} CPU cores), jax {report['jax']}, "
        f"XLA_FLAGS={report['xla_flags']!r}",
        f"model: {report['model']} ({report['labels']} labels, batch {report['batch_size']})",
    ]
    if "throughput" in report:
        lines += _throughput_lines(report)
    if "precision" in report:
        p = report["precision"]
        lines.append(f"(b) with float32 matmuls ('highest' precision, not TF32): "
                     f"{p['highest']['label_steps_per_s']:.1f} label-steps/s vs "
                     f"{p['default']['label_steps_per_s']:.1f}")
    lines += _end_to_end_lines(report) + _compile_lines(report) + _scaling_lines(report)
    return "\n".join(lines)


def _throughput_lines(report: dict[str, Any]) -> list[str]:
    t = report["throughput"]
    lines = ["", f"{'step of all labels':38s} {'s/step':>9s} {'label-steps/s':>14s} {'images/s':>10s} {'vs (c)':>7s}"]
    base = t["c_sequential"]["label_steps_per_s"]
    names = {"a_default_chunking": f"(a) scan default (chunks of {report['default_label_chunk']})",
             "b_all_labels_vmap": f"(b) one {report['labels']}-wide vmap per call",
             "c_sequential": "(c) one label per call (sequential)"}
    for key, label in names.items():
        row = t[key]
        lines.append(f"{label:38s} {row['seconds_per_step_of_all_labels']:9.3f} {row['label_steps_per_s']:14.1f} "
                     f"{row['images_per_s']:10.0f} {row['label_steps_per_s'] / base:7.2f}")
    if "flops" in report:
        f = report["flops"]
        lines += ["", f"FLOPs per all-labels step: XLA {f['xla_per_all_labels_step'] or float('nan'):.3e}, hand count "
                      f"{f['hand_count_per_all_labels_step'] or float('nan'):.3e}",
                  f"achieved {f['achieved_flops_per_s_all_labels_vmap'] / 1e9:.1f} GFLOP/s = "
                  f"{100 * f['fraction_of_matmul']:.0f}% of a float32 matmul's "
                  f"{f['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s"]
    return lines


def _end_to_end_lines(report: dict[str, Any]) -> list[str]:
    if "end_to_end" not in report:
        return []
    e = report["end_to_end"]
    return ["", f"end to end ({e['preset']}): {e['wall_s']:.1f} s: first pass {e['first_pass_s']:.1f} s (every "
                f"label's search; {e['compile_s']:.1f} s compiling), source check of "
                f"{e['source_checked'] or 'no label'} {e['source_check_s']:.1f} s",
            f"verdict: {e['verdict_line']}", f"the gap rule's verdict: {e['gap_rule_verdict_line']}",
            f"the reference's rule flags {e['flagged']}, anomaly index {e['anomaly_index']:.2f}",
            f"label-steps run {e['label_steps_run']} (computed {e['slot_steps_computed']}) of "
            f"{e['label_steps_without_early_stop']} without early stopping: "
            f"{100 * e['work_saved_fraction']:.0f}% saved"]


def _compile_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    if report.get("dispatch"):
        lines += ["", "width  s/step one per dispatch  s/step epoch per dispatch  compile s (one, epoch)"]
        for row in report["dispatch"]:
            lines.append(f"{row['width']:5d}  {row['seconds_per_step_one_per_dispatch']:24.4f}  "
                         f"{row['seconds_per_step_epoch_per_dispatch']:25.4f}  "
                         f"{row['compile_s_one_per_dispatch']:.2f}, "
                         f"{row['compile_s_epoch_per_dispatch']:.2f}")
    cache = report.get("compile_cache") or {}
    for name, r in cache.items():
        if "error" in r:
            lines.append(f"{name} run failed: {r['error']}")
            continue
        lines.append(f"{name} run ({r.get('matmul_precision', 'highest')} precision; persistent compile cache "
                     f"{'empty' if name.startswith('cold') else 'filled'}): process {r['process_s']:.1f} s, scan "
                     f"{r['scan_s']:.1f} s, waiting for the compiler {r['compile_s']:.2f} s, "
                     f"{r['compile_count']} executables, {r.get('compile_background_s', 0):.1f} s compiled ahead")
    return lines


def _scaling_lines(report: dict[str, Any]) -> list[str]:
    if "scaling_small_network" not in report:
        return []
    lines = ["", "labels  s/label-step  XLA temp MB  compile s  (small network)"]
    for row in report["scaling_small_network"]:
        temp = row["xla_temp_bytes"]
        lines.append(f"{row['labels']:6d}  {row['seconds_per_label_step']:12.5f}  "
                     f"{(temp or 0) / 2**20:11.1f}  {row['compile_s']:9.2f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ncjax.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Keras model (default: the real backdoored GTSRB model when ../shared/real "
                                        "exists, else the embedded demo)")
    parser.add_argument("--data", help="clean images for --model")
    parser.add_argument("--preset", choices=["auto", "fast", "paper"], default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="about a minute: short end-to-end scan, small widths")
    parser.add_argument("--only", help=f"comma-separated parts to measure, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--out", default="bench.json")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only.split(",")) - set(PARTS)) if args.only else []
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)} for --only; the parts are {', '.join(PARTS)}")
    from ncjax import demo
    from ncjax.data.images import load_images
    from ncjax.models.loading import load_model

    if args.model:
        model = load_model(args.model)
        images, labels = load_images(args.data, model.input_shape) if args.data else demo.demo_images()
        name = args.model
    elif REAL_MODEL.exists() and REAL_DATA.exists():
        model, name = load_model(REAL_MODEL), str(REAL_MODEL)
        with np.load(REAL_DATA) as data:
            images, labels = data["x_roi"].astype(np.float32), data["y"]
    else:
        model, name = demo.demo_model(), str(demo.demo_model_path())
        images, labels = demo.demo_images()
    log = lambda line: print(line, file=sys.stderr, flush=True)
    out = Path(args.out)

    def save(report: dict[str, Any]) -> None:
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")

    report = benchmark(model=model, images=images, model_name=name, preset=args.preset,
                       repeats=2 if args.quick else args.repeats, quick=args.quick, labels=labels, log=log, save=save,
                       only=args.only.split(",") if args.only else None)
    print(format_table(report))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
