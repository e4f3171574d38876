"""`python -m ncjax.run --model model.h5 --data clean.npz`: scan every label, print the verdict, write pictures.

With no --model and no --data it scans the embedded demo (a synthetic traffic-sign model backdoored at 33).
The three lines printed first are the reference's MAD test; the verdict follows the ratio score (labels whose
trigger is --min-ratio times smaller than the median label's) unless --verdict gap or --verdict reference.
Exit codes: 0 the scan finished with a verdict, 2 bad input, 3 infected with --fail-on-detect, 4 inconclusive
(some labels never reached the attack-success threshold: the norms cannot be compared), 130 interrupted by
SIGINT, 143 by SIGTERM (the state of the last finished epoch is kept: rerun with --resume).
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from dataclasses import dataclass
import warnings
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

from ncjax.cli_options import (
    OneLineParser,
    add_dataclass_flags,
    file_prefix,
    finite_at_least,
    given_values,
    int_at_least,
    label_list,
    preprocessing_flag,
    run_command,
    seed,
)
from ncjax.compile_cache import disable_compile_cache, enable_compile_cache
from ncjax.config import ScanConfig
from ncjax.data import in_model_scale, load_images
from ncjax.errors import PreflightError, UsageError
from ncjax.loading import load_model, parse_input_shape
from ncjax.mitigation.triggers import TRIGGERS_FILE, TriggerSet
from ncjax.outlier import l1_norms
from ncjax.pictures import save_trigger_pictures
from ncjax.preflight import Preflight, run_preflight
from ncjax.preprocess import Preprocessing
from ncjax.printable import printable
from ncjax.report import build_report, write_json_atomic
from ncjax.restarts import LabelTriggers, best_over_restarts
from ncjax.scan import scan_all_labels
from ncjax.sources import CHECKED_CANDIDATES, DEFAULT_MAX_SPREAD, SourceCheck, check_candidates
from ncjax.score import DEFAULT_MIN_RATIO
from ncjax.summary import save_summary
from ncjax.verdict import decide

EXIT_OK, EXIT_BAD_INPUT, EXIT_INFECTED, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 3, 4, 130, 143
STATE_FILE = "scan_state.npz"
SOURCE_STATE_FILE = "source_check_state.npz"
# ScanConfig fields with a flag of their own (--preprocess, --bgr) rather than a generated one.
OWN_FLAG_FIELDS = {"preprocessing"}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m ncjax.run", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", help="Keras (.h5/.keras) or ONNX (.onnx) model; default: the embedded demo model")
    p.add_argument("--layout", choices=["NCHW", "NHWC"], help="an ONNX model's input layout, where it is ambiguous")
    p.add_argument("--input-shape", help="H,W,C for models that leave their image size open")
    p.add_argument("--data", help="clean images: .npz (x_roi or x, y) or reference .h5 (X_test) arrays in the model's "
                                  "input scale, or a GTSRB folder or class sub-folders of image files (raw pixels, "
                                  "preprocessed with --preprocess); default: the demo's synthetic images")
    p.add_argument("--data-key", help="name of the image array in --data")
    p.add_argument("--demo-clean", action="store_true", help="scan the demo's clean twin instead of the infected one")
    p.add_argument("--out", default="ncjax_out", help="folder for pictures and report.json (default: ncjax_out)")
    p.add_argument("--prefix", default="gtsrb", type=file_prefix,
                   help="picture file-name prefix, as the reference's (default: gtsrb)")
    p.add_argument("--preset", choices=["paper", "fast"], help="paper: the reference's schedule; fast: a CPU "
                                                               "budget (default: fast on CPU, paper otherwise)")
    p.add_argument("--labels", type=label_list, help="comma-separated labels to scan (default: all)")
    p.add_argument("--preprocess", default="raw", help="raw|mnist|inception|imagenet|torch|OFFSET,SCALE: how model "
                                                      "inputs relate to raw 0..255 pixels (default: raw)")
    p.add_argument("--bgr", action="store_true", help="with OFFSET,SCALE: the model takes BGR channels")
    p.add_argument("--seed", type=seed, default=0, help="the PRNG seed of the triggers and batches (default: 0)")
    p.add_argument("--threshold", type=finite_at_least(0, strict=True), default=2.0,
                   help="anomaly-index threshold, finite and > 0 (default: 2)")
    p.add_argument("--verdict", choices=["score", "gap", "reference"], default="score",
                   help="score: labels whose trigger is --min-ratio times smaller than the median label's (measured in "
                        "experiments/score.md); gap: MAD-flagged labels standing apart from the next label's norm by "
                        "--min-gap; reference: the MAD rule alone (default: score)")
    p.add_argument("--min-ratio", type=finite_at_least(1, strict=True), default=DEFAULT_MIN_RATIO,
                   help=f"median norm over a label's norm for --verdict score, finite and > 1 (default: "
                        f"{DEFAULT_MIN_RATIO:g})")
    p.add_argument("--min-gap", type=finite_at_least(1), default=1.5,
                   help="norm ratio for --verdict gap, finite and >= 1 (default: 1.5)")
    p.add_argument("--source-check", type=int_at_least(0), default=8, metavar="N",
                   help=f"for the score's candidates (up to {CHECKED_CANDIDATES}), invert one trigger from each of N "
                        "other classes and set aside a candidate those triggers do not share (0: off; default: 8)")
    p.add_argument("--max-spread", type=finite_at_least(1), default=DEFAULT_MAX_SPREAD,
                   help=f"the source spread above which a candidate is set aside (default: {DEFAULT_MAX_SPREAD:g})")
    p.add_argument("--no-quantize", action="store_true", help="MAD on exact norms instead of the PNG-quantized "
                                                             "ones the reference reads back")
    p.add_argument("--resume", action="store_true", help="continue an interrupted scan from OUT/scan_state.npz")
    p.add_argument("--fail-on-detect", action="store_true", help="exit 3 when the verdict is infected")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--force", action="store_true", help="scan even when the pre-flight check finds that the model "
                                                        "does not see the clean images as set")
    p.add_argument("--compile-cache", metavar="DIR", help="keep compiled steps here and reuse them in later scans of "
                                                          "the same architecture (default: $NCJAX_COMPILE_CACHE, else "
                                                          "~/.cache/ncjax/jax-compile)")
    p.add_argument("--no-compile-cache", action="store_true", help="compile every step afresh, keeping nothing")
    group = p.add_argument_group("scan settings (ScanConfig)", "left out, a setting takes the preset's value; the "
                                 "defaults shown are the paper preset's")
    add_dataclass_flags(group, ScanConfig, skip=OWN_FLAG_FIELDS)
    return p


def _preset(args: argparse.Namespace) -> str:
    return args.preset or ("fast" if jax.default_backend() == "cpu" else "paper")


def config_from_args(args: argparse.Namespace) -> ScanConfig:
    preset = _preset(args)
    changes = given_values(args, [f.name for f in dataclasses.fields(ScanConfig) if f.name not in OWN_FLAG_FIELDS])
    changes["preprocessing"] = preprocessing_flag(args.preprocess, args.bgr)
    return getattr(ScanConfig, preset)(**changes)


def _progress(total_labels: int, max_epochs: int, enabled: bool):
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total_labels * max_epochs, unit="label-epoch", file=sys.stderr, dynamic_ncols=True)

    def update(progress) -> None:
        done_units = progress.labels_done * max_epochs + len(progress.active_labels) * progress.epoch
        bar.n = min(max(done_units, bar.n), bar.total)
        bar.set_description(f"labels done {progress.labels_done}/{progress.labels_total}, epoch {progress.epoch}")
        bar.refresh()

    return bar, update


@dataclass(frozen=True)
class _Inputs:
    model: Any
    images: np.ndarray  # in the model's input scale
    labels: np.ndarray | None
    from_files: bool  # read from image files (raw pixels that went through --preprocess)
    model_name: str
    data_name: str


def _inputs(args: argparse.Namespace, config: ScanConfig) -> _Inputs:
    if args.demo_clean and (args.model or args.data):
        raise UsageError("--demo-clean scans the embedded demo; leave out --model and --data.")
    if args.model is None and args.data is None:
        from ncjax import demo

        print(f"no --model/--data: scanning the embedded demo ({'clean twin' if args.demo_clean else 'backdoored at 33'}).")
        images, labels = demo.demo_images()
        return _Inputs(demo.demo_model(infected=not args.demo_clean), images, labels, False,
                       str(demo.demo_model_path(infected=not args.demo_clean)), "ncjax.demo.demo_images()")
    if args.model is None or args.data is None:
        raise UsageError("give both --model and --data (clean images), or neither to scan the embedded demo.")
    model = load_model(args.model, layout=args.layout, input_shape=parse_input_shape(args.input_shape))
    images, labels = load_images(args.data, model.input_shape, key=args.data_key)
    images = in_model_scale(args.data, images, config.preprocessing)
    return _Inputs(model, images, labels, Path(args.data).is_dir(), args.model, args.data)


def _preflight(args: argparse.Namespace, inputs: _Inputs, config: ScanConfig) -> Preflight:
    check = run_preflight(inputs.model, inputs.images, inputs.labels, preprocessing=config.preprocessing,
                          from_files=inputs.from_files)
    if check.given is not None:
        print(f"pre-flight: the model classifies {check.given.accuracy:.1%} of {check.images} labelled clean images "
              f"correctly (chance {check.chance:.1%})")
    problem = check.problem()
    if problem and not args.force:
        raise PreflightError(f"pre-flight: {problem}. (--force scans anyway.)")
    if problem:
        print(f"note: pre-flight: {problem}; scanning anyway (--force).")
    return check


def _prepare_out(out: Path) -> None:
    """The output folder exists and takes files, checked before any scanning."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file; give a folder (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".ncjax_write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write to --out {str(out)!r}: {e.strerror or e}.") from None


def _scan(args: argparse.Namespace, inputs: _Inputs, config: ScanConfig, state: Path):
    labels = len(args.labels) if args.labels else inputs.model.num_classes
    return _interruptible(args, labels * config.restarts, config, lambda callback: scan_all_labels(
        inputs.model, inputs.images, labels=args.labels, config=config, key=jax.random.key(args.seed),
        callback=callback, checkpoint=state, resume=args.resume))


def _interruptible(args: argparse.Namespace, slots: int, config: ScanConfig, scan):
    """Run `scan(callback)` with a progress bar and SIGTERM (what schedulers send) ending it like Ctrl-C once
    the epoch in flight is saved.

    The handler only records the signal: raising from it could land inside a C call (numpy, XLA) and surface
    as a SystemError instead of an interrupt. The progress callback, which runs after each epoch's checkpoint,
    raises it.
    """
    bar, update = _progress(slots, config.max_epochs, not args.no_progress)
    requested: list[str] = []

    def callback(progress) -> None:
        if update is not None:
            update(progress)
        if requested:
            raise KeyboardInterrupt(requested[0])

    # Only the main thread may set handlers: called from another (ncjax.audit in a server's thread), SIGTERM is
    # left to whoever owns the process.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: requested.append(signal.Signals(signum).name)) \
        if main_thread else None
    try:
        return scan(callback)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()


def _check_sources(args: argparse.Namespace, inputs: _Inputs, config: ScanConfig, verdict,
                   out: Path) -> tuple[SourceCheck, ...]:
    """The source-specific check of the score's largest candidates, when it can run and is asked for."""
    if verdict.score is None or not verdict.score.candidates or args.source_check == 0:
        return ()
    if inputs.labels is None:
        print("note: the clean images carry no labels, so the source-specific check of the candidates was skipped.")
        return ()
    candidates = verdict.score.candidates[:CHECKED_CANDIDATES]
    print(f"source check: label{'s' if len(candidates) > 1 else ''} {', '.join(map(str, candidates))}, one trigger "
          f"from each of up to {args.source_check} other classes")
    return _interruptible(args, len(candidates) * args.source_check, config, lambda callback: check_candidates(
        inputs.model, inputs.images, inputs.labels, verdict.score, config=config, key=jax.random.key(args.seed),
        sources_per_label=args.source_check, quantize=not args.no_quantize, callback=callback,
        checkpoint=out / SOURCE_STATE_FILE, resume=args.resume))


def _print_verdict(verdict) -> None:
    outliers = verdict.mad
    for line in outliers.lines():
        print(line)
    print(f"verdict: {verdict.line()}")
    if verdict.infected and set(outliers.flagged) - set(verdict.labels):
        others = ", ".join(str(v) for v in outliers.flagged if v not in verdict.labels)
        print(f"note: the reference's rule also flags {others}; their norms do not stand apart from the rest")
    if outliers.note:
        print(f"note: {outliers.note}")


def _write_outputs(args, inputs: _Inputs, result, best: LabelTriggers, verdict, out: Path, state: Path,
                   check: Preflight, inputs_preprocessing: Preprocessing) -> None:
    try:
        save_trigger_pictures(result, out, args.prefix)
        save_summary(out / "summary.png", result.masks, result.patterns, verdict,
                     title=f"{printable(Path(inputs.model_name).name)}: {verdict.headline()}")
        report = build_report(result, verdict, model=inputs.model_name, data=inputs.data_name,
                              extra={"quantized_norms": not args.no_quantize, "preflight": check.as_dict(),
                                     "restarts": _restarts_report(best)})
        write_json_atomic(report, out / "report.json")
        named = verdict.labels if verdict.status in ("infected", "suspicious") else ()
        TriggerSet(result.labels, result.masks, result.patterns, named=named).save(
            out / TRIGGERS_FILE, preprocessing=inputs_preprocessing, verdict=verdict.status)
    except OSError as e:
        raise UsageError(f"cannot write the outputs to {str(out)!r} ({e.strerror or e}); the finished scan is kept in "
                         f"{state}: rerun the same command with --resume to write them without scanning again.") from None


def _verdict(args: argparse.Namespace, inputs: _Inputs, config: ScanConfig, result, out: Path):
    """Each label's best restart, the verdict on their norms, and again after the source check of its
    candidates where one ran. Returns (the per-label result, the restarts' reduction, the verdict)."""
    best = best_over_restarts(result)
    result = result.select(best.chosen_slot)  # one trigger per label: its smallest over the restarts
    norms = l1_norms(result.masks, quantize=not args.no_quantize)
    settings = dict(reached=result.reached_threshold, rule=args.verdict, threshold=args.threshold,
                    min_gap=args.min_gap, min_ratio=args.min_ratio, max_spread=args.max_spread)
    verdict = decide(norms, result.labels, **settings)
    sources = _check_sources(args, inputs, config, verdict, out)
    if sources:
        verdict = decide(norms, result.labels, sources=sources, **settings)
    return result, best, verdict


def _restarts_report(best: LabelTriggers) -> dict:
    """Every restart's norm per label (None where it never reached the threshold) and the spread."""
    return {"restarts": best.restarts, "chosen": best.chosen_restart.tolist(),
            "norms": [[None if np.isnan(v) else float(v) for v in row] for row in best.restart_norms],
            "spread": [None if np.isnan(v) else float(v) for v in best.spread]}


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.no_compile_cache:
        disable_compile_cache()
    else:
        enable_compile_cache(args.compile_cache)
    inputs = _inputs(args, config)
    out = Path(args.out)
    _prepare_out(out)  # before the scan, so a bad --out costs no scan
    if config.preprocessing.mode == "raw" and inputs.images.size and float(inputs.images.max()) <= 1.0:
        warnings.warn("the images lie in [0, 1] but --preprocess is raw (0..255 pixels): if the model takes "
                      "x / 255, pass --preprocess mnist.", stacklevel=1)
    print(f"model: {printable(inputs.model_name, limit=200)} ({inputs.model.num_classes} classes, input "
          f"{inputs.model.input_shape}); data: {printable(inputs.data_name, limit=200)} ({len(inputs.images)} images); preset: {_preset(args)}; loss: {config.loss}")
    check = _preflight(args, inputs, config)
    state = out / STATE_FILE
    if state.exists() and not args.resume:
        print(f"note: {state} exists from an earlier scan; starting afresh (pass --resume to continue it).")
    try:
        result = _scan(args, inputs, config, state)
        result, best, verdict = _verdict(args, inputs, config, result, out)
    except KeyboardInterrupt as e:
        checked = out / SOURCE_STATE_FILE
        print(f"\ninterrupted{f' ({e})' if str(e) else ''}: the scan's state after its last finished epoch is in "
              f"{state}{f' and the source check in {checked}' if checked.exists() else ''}; rerun the same command "
              "with --resume to continue.", file=sys.stderr)
        return EXIT_TERMINATED if str(e) == "SIGTERM" else EXIT_INTERRUPTED
    _print_verdict(verdict)
    _write_outputs(args, inputs, result, best, verdict, out, state, check, config.preprocessing)
    print(f"wrote {len(result.labels) * 3} trigger pictures, summary.png, report.json and {TRIGGERS_FILE} to {out}/ "
          f"(scan {result.wall_time_s:.0f} s)")
    if verdict.status == "inconclusive":
        return EXIT_INCONCLUSIVE
    return EXIT_INFECTED if verdict.infected and args.fail_on_detect else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
