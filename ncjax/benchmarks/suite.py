"""The benchmark suite behind `make bench`: all labels at once against one label at a time, against the machine.

Measures, in one run on one device: (1) optimizer-step throughput of the scan's default chunking, of one
all-labels vmap per call and of the sequential baseline (one label per call, the way the reference and its peers
scan), interleaved, medians after warm-up; (2) the step's FLOPs from XLA's cost analysis beside a hand count, the
achieved FLOP/s and its fraction of a large float32 matmul's; (3) a whole scan to a verdict and the work early
stopping and compaction saved; (4) time per label-step and memory as the label count grows; (5) at each width
the compaction visits, one step per dispatch against a whole epoch per dispatch; (6) a whole scan in a new
process twice, with the persistent compile cache empty and then filled. Results come back as a dict (bench.json's
contents); ncjax/benchmarks/cli.py prints them.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.benchmarks.bench_compile import measure_compile_cache, measure_dispatch
from ncjax.benchmarks.step_timer import StepTimer
from ncjax.errors import UsageError
from ncjax.models.classifier import Classifier
from ncjax.pipeline.model_scan import PipelineEvent, scan_model
from ncjax.scan.plan import default_label_chunk, per_label_bytes
from ncjax.search.config import ScanConfig, device_preset
from ncjax.verdict.decision import decide


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


def environment() -> dict[str, Any]:
    """The machine and software a measurement ran on."""
    return {
        "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(), "devices": len(jax.devices()),
        "jax": jax.__version__, "jaxlib": getattr(jax.lib, "__version__", None) or _jaxlib_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "cpu": _cpu_name(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def _environment(model_name: str, labels: int, config: ScanConfig, preset: str, repeats: int) -> dict[str, Any]:
    return {**environment(), "model": model_name, "labels": labels, "batch_size": config.batch_size,
            "preset": preset, "repeats": repeats}


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
    """A whole scan to the verdict users get, through the pipeline `python -m ncjax.run` calls (scan_model): the
    first pass (every label's search, focused or not) and the source-specific check of the score's candidates
    (when the images carry labels), and the work early stopping, the focus and compaction saved."""
    config = config if not quick else config.replace(max_epochs=2, warmup_epochs=None, restarts=1)
    stages: dict[str, float] = {}

    def on_event(event: PipelineEvent) -> None:
        if event.progress is None and event.preflight is None:
            stages.setdefault(event.stage, time.perf_counter())
        elif event.progress is not None and event.progress.epoch % 50 == 0:
            p = event.progress
            log(f"  {event.stage} epoch {p.epoch}: {p.labels_done}/{p.labels_total} searches done "
                f"({p.elapsed_s:.0f} s)")

    start = time.perf_counter()
    outcome = scan_model(model, images, labels, key=jax.random.key(0), config=config, force=True, callback=on_event)
    wall = time.perf_counter() - start
    first_s = stages.get("source-check", start + wall) - stages.get("scan", start)
    result, verdict = outcome.result, outcome.verdict
    gap = decide(verdict.mad.norms, result.labels, reached=result.reached_threshold, rule="gap")
    without = len(result.labels) * config.restarts * config.max_epochs * config.steps_per_epoch
    return {"end_to_end": {
        "preset": preset if not quick else f"{preset} (2 epochs, one start, unfocused, --quick)", "wall_s": wall,
        "first_pass_s": first_s, "source_check_s": wall - first_s - (stages.get("scan", start) - start),
        "source_checked": [c.label for c in verdict.sources], "compile_s": result.compile_time_s,
        "label_steps_run": result.label_steps, "slot_steps_computed": result.slot_steps,
        "label_steps_without_early_stop": without, "work_saved_fraction": 1 - result.slot_steps / without,
        "focus": None if outcome.focus is None else outcome.focus.line(), "verdict": verdict.status,
        "verdict_labels": list(verdict.labels), "verdict_line": verdict.line(), "flagged": list(verdict.mad.flagged),
        "gap_rule_verdict_line": gap.line(), "anomaly_index": verdict.mad.anomaly_index, "lines": verdict.mad.lines(),
    }}


def _jaxlib_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None
