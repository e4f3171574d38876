"""`make bench` / `python -m ncjax.bench`: the benchmark suite (ncjax/benchmarks/suite.py) on a model, printed as a
table and written to bench.json."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncjax.benchmarks.suite import PARTS, benchmark
from ncjax.cli.options import OneLineParser, run_command
from ncjax.errors import UsageError
from ncjax.pipeline.report import write_json_atomic
from ncjax.search.config import PRESETS

# The real data lies beside the checkout (as CI lays it); NCJAX_REAL_DATA points elsewhere, as in the tests.
REAL = Path(os.environ.get("NCJAX_REAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "real"))
REAL_MODEL = REAL / "models" / "gtsrb_backdoor_33_logits.h5"
REAL_DATA = REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz"
PEER_DIR = Path(os.environ.get("NCJAX_PEERS", REAL.parent / "peers")) / "neural_cleanse_reference"


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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ncjax.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Keras model (default: the real backdoored GTSRB model when ../shared/real "
                                        "exists, else the embedded demo)")
    parser.add_argument("--data", help="clean images for --model")
    parser.add_argument("--preset", choices=["auto", *PRESETS], default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="about a minute: short end-to-end scan, small widths")
    parser.add_argument("--only", help=f"comma-separated parts to measure, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--out", default="bench.json")
    peers = parser.add_argument_group("the reference as a peer (make bench-peers)")
    peers.add_argument("--peers", action="store_true", help="instead of the suite: the reference Neural Cleanse and "
                       "ncjax side by side on the real model; adds 'peers' to --out, keeping what it holds")
    peers.add_argument("--peer-dir", default=str(PEER_DIR), help="the reference's folder (default: %(default)s)")
    peers.add_argument("--peer-python", default=".peer-venv/bin/python", help="the reference's Python")
    peers.add_argument("--label", type=int, default=33, help="the one-label runs' label (default: %(default)s, the "
                       "real model's backdoor target)")
    peers.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    peers.add_argument("--epochs", type=int, default=3, help="the reference's 31-step epochs per one-label run")
    peers.add_argument("--same-start-epochs", type=int, default=20, help="epochs of the run both tools start from "
                       "ncjax's first trigger (default: %(default)s)")
    return parser


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _inputs(args: argparse.Namespace):
    from ncjax import demo
    from ncjax.data.images import load_images
    from ncjax.data.preprocess import Preprocessing
    from ncjax.models.loading import load_model

    if args.model:
        model = load_model(args.model)
        if not args.data:
            return model, *demo.demo_images(), args.model
        clean = load_images(args.data, model.input_shape)
        return model, clean.in_model_scale(Preprocessing()), clean.labels, args.model
    if REAL_MODEL.exists() and REAL_DATA.exists():
        with np.load(REAL_DATA) as data:
            return load_model(REAL_MODEL), data["x_roi"].astype(np.float32), data["y"], str(REAL_MODEL)
    if args.peers:
        raise UsageError(f"the peer benchmark runs on the real model, which is not at {str(REAL)!r} (set "
                         "NCJAX_REAL_DATA).")
    images, labels = demo.demo_images()
    return demo.demo_model(), images, labels, str(demo.demo_model_path())


def _peers(args: argparse.Namespace) -> int:
    from ncjax.benchmarks.peers import PeerSettings, compare_with_reference
    from ncjax.benchmarks.suite import environment

    if args.model or args.data:
        raise UsageError("--peers compares on the real model, the one the reference loads; leave out --model and "
                         "--data.")
    settings = PeerSettings(reference_dir=Path(args.peer_dir), python=Path(args.peer_python), label=args.label,
                            rounds=args.rounds,
                            epochs=args.epochs, same_start_epochs=args.same_start_epochs)
    model, images, _, name = _inputs(args)
    result = compare_with_reference(model, images, settings, log=_log)
    out = Path(args.out)
    try:
        report = json.loads(out.read_text()) if out.exists() else {}
    except (OSError, ValueError):
        report = {}
    report["peers"] = {**environment(), "model": name, **result}
    write_json_atomic(report, out)
    print("\n".join(peer_lines(report["peers"])))
    print(f"\nwrote 'peers' into {args.out}")
    return 0


def peer_lines(peers: dict[str, Any]) -> list[str]:
    seconds, ratio = peers["seconds_per_label_step"], peers["ncjax_over_reference"]
    projected = peers["projected_paper_scan_s"]
    return [
        f"device: {peers['device']} ({peers['cpu_count']} CPU cores), load average {peers['load_average_median']:.2f}",
        f"{'seconds per label-step':40s} {'ms':>8s} {'x reference':>12s}",
        f"{'reference, one label':40s} {seconds['reference_one_label'] * 1e3:8.1f} {1:12.2f}",
        f"{'ncjax, one label':40s} {seconds['ncjax_one_label'] * 1e3:8.1f} {ratio['one_label']:12.2f}",
        f"{'ncjax, all labels in one step':40s} {seconds['ncjax_all_labels'] * 1e3:8.1f} {ratio['all_labels']:12.2f}",
        f"projected paper-schedule scan ({projected['label_steps']} label-steps): reference "
        f"{projected['reference'] / 3600:.1f} h, ncjax {projected['ncjax_all_labels'] / 3600:.1f} h",
        peers["same_start"]["line"],
    ]


def _suite(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.only.split(",")) - set(PARTS)) if args.only else []
    if unknown:
        raise UsageError(f"unknown part(s) {', '.join(unknown)} for --only; the parts are {', '.join(PARTS)}")
    model, images, labels, name = _inputs(args)
    out = Path(args.out)

    def save(report: dict[str, Any]) -> None:
        write_json_atomic(report, out)

    report = benchmark(model=model, images=images, model_name=name, preset=args.preset,
                       repeats=2 if args.quick else args.repeats, quick=args.quick, labels=labels, log=_log, save=save,
                       only=args.only.split(",") if args.only else None)
    print(format_table(report))
    print(f"\nwrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), lambda args: _peers(args) if args.peers else _suite(args), argv)
