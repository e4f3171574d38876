"""Where the CPU step's time goes, and which XLA:CPU settings change it (the peer comparison's step, issue: CPU speed).

For each candidate XLA_FLAGS setting, a fresh process (XLA reads its flags once) times the scan's compiled step
on the real backdoored GTSRB model (batch 32): one label per call and all 43 labels per call, medians after
warm-up; the settings' processes run in rounds A B C A B C, so load drifts hit them alike. It also times the
parts of one label's step (the forward pass, the input gradient, the whole step) so the profile is in the same run.

    .venv/bin/python experiments/cpu_step_flags.py --rounds 3 --out experiments/results/cpu_step_flags.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REAL = Path(os.environ.get("NCJAX_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "real"))
MODEL = REAL / "models" / "gtsrb_backdoor_33_logits.h5"
DATA = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"

# name -> XLA_FLAGS. "ncjax" is what `import ncjax` sets; the others are what this jaxlib offers for CPU kernels.
SETTINGS = {
    "ncjax": "--xla_cpu_experimental_ynn_fusion_type=",
    "jax-default": "--xla_cpu_enable_fast_math=false",  # a flag that changes nothing: XLA_FLAGS set, ncjax's left out
    "onednn": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_onednn=true",
    # oneDNN's own convolution and matmul kernels, through XLA's oneDNN custom-call rewriter
    "onednn-custom-call": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_experimental_onednn_custom_call=true",
    "xnnpack": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_xnnpack=true",
    "eigen-1-thread": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_multi_thread_eigen=false",
}


def child(width: int, steps: int, parts: bool) -> dict:
    """In a fresh process: seconds per call of the step at width 1 and `width`, and of one label's parts."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ncjax import ScanConfig, load_model
    from ncjax.benchmarks.step_timer import StepTimer

    model = load_model(MODEL)
    with np.load(DATA) as data:
        images = jnp.asarray(data["x_roi"][:2000].astype(np.float32))
    config = ScanConfig.fast()
    timer = StepTimer(model, images, config)
    out: dict = {"xla_flags": os.environ.get("XLA_FLAGS"), "compile_s": {}}
    for w in (1, width):
        out["compile_s"][w] = timer.compile(w)
        timer.call(w)
    for w in (1, width):
        out[f"step_s_width_{w}"] = statistics.median(timer.call(w) for _ in range(steps))
    if parts:
        x = images[:32]
        forward = jax.jit(lambda p, v: model.apply(p, v).sum())
        backward = jax.jit(jax.grad(lambda v, p: model.apply(p, v).sum()))
        forward(model.params, x).block_until_ready()
        backward(x, model.params).block_until_ready()
        times = {"forward": [], "input_gradient": []}
        for _ in range(steps):
            start = time.perf_counter()
            forward(model.params, x).block_until_ready()
            times["forward"].append(time.perf_counter() - start)
            start = time.perf_counter()
            backward(x, model.params).block_until_ready()
            times["input_gradient"].append(time.perf_counter() - start)
        out["parts_s_batch_32"] = {k: statistics.median(v) for k, v in times.items()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed calls per width per round")
    parser.add_argument("--width", type=int, default=43)
    parser.add_argument("--only", help="comma-separated setting names")
    parser.add_argument("--out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.width, args.steps, args.parts)))
        return 0
    names = args.only.split(",") if args.only else list(SETTINGS)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
            env["XLA_FLAGS"] = SETTINGS[name]
            command = [sys.executable, __file__, "--child", "--width", str(args.width), "--steps", str(args.steps)]
            done = subprocess.run(command + (["--parts"] if round_ == 0 else []), env=env, capture_output=True,
                                  text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                results[name].append({"error": done.stderr[-500:]})
                print(f"{name}: failed: {done.stderr[-300:]}", file=sys.stderr)
                continue
            result = json.loads(line[len("RESULT "):])
            result["load_average"] = os.getloadavg()[0]
            results[name].append(result)
            print(f"round {round_} {name}: width 1 {result['step_s_width_1'] * 1e3:.1f} ms, width {args.width} "
                  f"{result[f'step_s_width_{args.width}'] * 1e3:.1f} ms "
                  f"({result[f'step_s_width_{args.width}'] / args.width * 1e3:.1f} ms per label-step)"
                  + (f"; parts {result['parts_s_batch_32']}" if "parts_s_batch_32" in result else ""),
                  file=sys.stderr, flush=True)
    summary = {}
    for name, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if ok:
            summary[name] = {key: statistics.median(r[key] for r in ok)
                             for key in ("step_s_width_1", f"step_s_width_{args.width}")}
    report = {"settings": SETTINGS, "runs": results, "medians": summary, "machine": os.uname().machine,
              "cpu_count": os.cpu_count()}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
