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
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ncjax.cli.options import (
    ARCHITECTURE_HELP,
    OneLineParser,
    add_dataclass_flags,
    add_preprocessing_flags,
    file_prefix,
    finite_at_least,
    given_values,
    int_at_least,
    label_list,
    preprocessing_auto,
    preprocessing_flag,
    preprocessing_given,
    probability,
    run_command,
    seed,
    settings_from_flags,
)
from ncjax.core.printable import printable
from ncjax.data.convention import ConventionChoice, auto_convention
from ncjax.data.images import CleanImages, load_images
from ncjax.data.preprocess import Preprocessing
from ncjax.errors import UsageError
from ncjax.models.classifier import LAYOUTS
from ncjax.models.loading import load_model, parse_input_shape
from ncjax.pipeline.model_scan import (
    SOURCE_STATE_FILE,
    STATE_FILE,
    DecisionConfig,
    PipelineEvent,
    ScanOutcome,
    scan_model,
)
from ncjax.pipeline.out_folder import claim_out, prepare_out
from ncjax.pipeline.out_lock import hold_out
from ncjax.pipeline.report import run_record
from ncjax.pipeline.triggers import TRIGGERS_FILE
from ncjax.scan.compile_cache import disable_compile_cache, enable_compile_cache
from ncjax.scan.pairs import PAIR_SCAN_LIMIT
from ncjax.scan.work import DEFAULT_MAX_HOURS, duration_text
from ncjax.search.config import PRESETS, ScanConfig, device_preset
from ncjax.verdict.decision import Rule
from ncjax.verdict.margin import DEFAULT_MAX_P
from ncjax.verdict.pairs import DEFAULT_MIN_ASYMMETRY
from ncjax.verdict.score import DEFAULT_MIN_RATIO, DEFAULT_SUSPICIOUS_RATIO
from ncjax.verdict.source_check import CHECKED_CANDIDATES, DEFAULT_MAX_SPREAD

EXIT_OK, EXIT_BAD_INPUT, EXIT_INFECTED, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 3, 4, 130, 143
# ScanConfig fields with flags of their own (--preprocess, --mean, --std, --bgr) rather than a generated one.
OWN_FLAG_FIELDS = {"preprocessing"}
# ScanConfig fields no flag sets: the command scans triggers; --verdict margin or combined adds the margin search.
UNFLAGGED_FIELDS = {"search"}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m ncjax.run", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", help="Keras (.h5/.keras) or ONNX (.onnx) model; default: the embedded demo model")
    p.add_argument("--architecture", help=ARCHITECTURE_HELP)
    p.add_argument("--layout", choices=LAYOUTS, help="an ONNX model's input layout, where it is ambiguous")
    p.add_argument("--input-shape", help="H,W,C for models that leave their image size open")
    p.add_argument("--data", help="clean images: .npz (x_roi or x, y) or reference .h5 (X_test) arrays in the model's "
                                  "input scale, or a GTSRB folder or class sub-folders of image files (raw pixels, "
                                  "preprocessed with --preprocess); default: the demo's synthetic images")
    p.add_argument("--data-key", help="name of the image array in --data")
    p.add_argument("--demo-clean", action="store_true", help="scan the demo's clean twin instead of the infected one")
    p.add_argument("--out", default="ncjax_out", help="folder for pictures and report.json (default: ncjax_out)")
    p.add_argument("--prefix", default="gtsrb", type=file_prefix,
                   help="picture file-name prefix, as the reference's (default: gtsrb)")
    p.add_argument("--preset", choices=PRESETS, help="paper: the reference's schedule; fast: a CPU budget; focused: "
                                                     "the fast preset's warm-up for every label, then up to 4x its "
                                                     "epochs for the likeliest targets (default: focused on CPU, paper "
                                                     "otherwise)")
    p.add_argument("--labels", type=label_list, help="comma-separated labels to scan (default: all)")
    add_preprocessing_flags(p, auto=True, default_text="auto for labelled image files or uint8 arrays, else raw")
    p.add_argument("--seed", type=seed, default=0, help="the PRNG seed of the triggers and batches (default: 0)")
    p.add_argument("--threshold", type=finite_at_least(0, strict=True), default=2.0,
                   help="anomaly-index threshold, finite and > 0 (default: 2)")
    p.add_argument("--verdict", choices=typing.get_args(Rule), default="score",
                   help="score: labels whose trigger is --min-ratio times smaller than the median label's (measured in "
                        "experiments/score.md); gap: MAD-flagged labels standing apart from the next label's norm by "
                        "--min-gap; reference: the MAD rule alone; margin: MM-BD's maximum-margin statistic alone (a "
                        "second, shorter search: every label's largest logit margin over the others); combined: the "
                        "score or the margin statistic, the verdict saying which fired "
                        "(experiments/attack_benchmark.md; default: score)")
    p.add_argument("--max-p", type=probability, default=DEFAULT_MAX_P,
                   help=f"with --verdict margin or combined, the p-value below which the largest margin flags its "
                        f"label (default: {DEFAULT_MAX_P:g})")
    p.add_argument("--min-ratio", type=finite_at_least(1, strict=True), default=DEFAULT_MIN_RATIO,
                   help=f"median norm over a label's norm for --verdict score, finite and > 1 (default: "
                        f"{DEFAULT_MIN_RATIO:g})")
    p.add_argument("--suspicious-ratio", type=finite_at_least(1, strict=True), default=DEFAULT_SUSPICIOUS_RATIO,
                   help=f"with --verdict score, a largest ratio from this up to --min-ratio makes the scan SUSPICIOUS "
                        f"(default: {DEFAULT_SUSPICIOUS_RATIO:g}; equal to --min-ratio: never)")
    p.add_argument("--min-gap", type=finite_at_least(1), default=1.5,
                   help="norm ratio for --verdict gap, finite and >= 1 (default: 1.5)")
    p.add_argument("--source-check", type=int_at_least(0), default=8, metavar="N",
                   help=f"for the score's candidates (up to {CHECKED_CANDIDATES}), invert one trigger from each of N "
                        "other classes and set aside a candidate those triggers do not share (0: off; default: 8)")
    p.add_argument("--max-spread", type=finite_at_least(1), default=DEFAULT_MAX_SPREAD,
                   help=f"the source spread above which a candidate is set aside (default: {DEFAULT_MAX_SPREAD:g})")
    p.add_argument("--pairs", choices=["auto", "on", "off"], default="off",
                   help=f"search a trigger for every (source, target) pair of classes, which looks for backdoors "
                        f"that only some classes' images trigger: auto: when --data is labelled and holds at most "
                        f"{PAIR_SCAN_LIMIT} classes; on: always; off: never (default: off; a flagged pair makes the "
                        "scan SUSPICIOUS, and on the pair benchmark clean models were flagged too often to make it "
                        "the default)")
    p.add_argument("--min-asymmetry", type=finite_at_least(1, strict=True), default=DEFAULT_MIN_ASYMMETRY,
                   help=f"a pair whose trigger is this many times smaller than its reverse pair's (rows and columns "
                        f"accounted for) flags its target (default: {DEFAULT_MIN_ASYMMETRY:g})")
    p.add_argument("--no-quantize", action="store_true", help="MAD on exact norms instead of the PNG-quantized "
                                                             "ones the reference reads back")
    p.add_argument("--resume", action="store_true", help="continue an interrupted scan from OUT/scan_state.npz")
    p.add_argument("--overwrite", action="store_true", help="remove an earlier scan's files from --out first (without "
                                                           "this or --resume, an --out holding a scan is refused)")
    p.add_argument("--fail-on-detect", action="store_true", help="exit 3 when the verdict is infected")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--force", action="store_true", help="scan even when the pre-flight check finds that the model "
                                                        "does not see the clean images as set, or the scan's estimated "
                                                        "time or memory is beyond the limits")
    p.add_argument("--max-hours", type=finite_at_least(0, strict=True), default=DEFAULT_MAX_HOURS,
                   help=f"refuse a scan whose label search is estimated, from the model's shapes and this device's "
                        f"measured speed, to take longer than this (default: {DEFAULT_MAX_HOURS:g}; --force scans "
                        "anyway)")
    p.add_argument("--compile-cache", metavar="DIR", help="keep compiled steps here and reuse them in later scans of "
                                                          "the same architecture (default: $NCJAX_COMPILE_CACHE, else "
                                                          "~/.cache/ncjax/jax-compile)")
    p.add_argument("--no-compile-cache", action="store_true", help="compile every step afresh, keeping nothing")
    group = p.add_argument_group("scan settings (ScanConfig)", "left out, a setting takes the preset's value (each "
                                 "preset's is shown where they differ)")
    add_dataclass_flags(group, ScanConfig, skip=OWN_FLAG_FIELDS | UNFLAGGED_FIELDS,
                        presets={name: getattr(ScanConfig, name)() for name in PRESETS})
    return p


def _preset(args: argparse.Namespace) -> str:
    return args.preset or device_preset()


def generated_flag_fields() -> list[str]:
    """The ScanConfig fields whose flags are generated from them (the scan-settings group of --help)."""
    return [f.name for f in dataclasses.fields(ScanConfig) if f.name not in OWN_FLAG_FIELDS | UNFLAGGED_FIELDS]


def config_from_args(args: argparse.Namespace) -> ScanConfig:
    preset = _preset(args)
    changes = given_values(args, generated_flag_fields())
    # auto is settled once the model and images are read (_inputs); raw holds its place until then.
    changes["preprocessing"] = Preprocessing() if preprocessing_auto(args) else preprocessing_flag(args)
    return settings_from_flags(getattr(ScanConfig, preset), ScanConfig, **changes)


class _Progress:
    """One tqdm bar on stderr per stage (the scan, the source check), opened at the stage's first epoch."""

    def __init__(self, max_epochs: int, enabled: bool):
        self.max_epochs, self.enabled = max_epochs, enabled
        self.bar: Any = None  # a tqdm bar, imported when the first one opens
        self.estimate: str | None = None  # the pre-flight's estimate of the label search, shown beside its bar

    def update(self, progress) -> None:
        if not self.enabled:
            return
        total = progress.labels_total * self.max_epochs
        if self.bar is None or self.bar.total != total:
            self.close()
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="label-epoch", file=sys.stderr, dynamic_ncols=True)
            if self.estimate is not None:  # tqdm's own rate needs a few epochs: the pre-flight's estimate meanwhile
                self.bar.set_postfix_str(self.estimate, refresh=False)
                self.estimate = None  # the label search's only: later stages are other searches
        done_units = progress.labels_done * self.max_epochs + len(progress.active_labels) * progress.epoch
        self.bar.n = min(max(done_units, self.bar.n), self.bar.total)
        self.bar.set_description(f"epoch {progress.epoch}/{self.max_epochs}: {len(progress.active_labels)} labels "
                                 f"searching, {progress.labels_done}/{progress.labels_total} done")
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass(frozen=True)
class _Inputs:
    model: Any
    images: np.ndarray  # in the model's input scale
    labels: np.ndarray | None
    from_pixels: bool  # read as raw pixels (image files, uint8 arrays) that went through --preprocess
    model_name: str
    data_name: str
    preprocessing: Preprocessing  # as given, or as --preprocess auto chose
    convention: ConventionChoice | None = None  # what --preprocess auto tried
    notes: tuple[str, ...] = ()  # what reading the data assumed or changed


def _inputs(args: argparse.Namespace, config: ScanConfig) -> _Inputs:
    if args.demo_clean and (args.model or args.data):
        raise UsageError("--demo-clean scans the embedded demo; leave out --model and --data.")
    if args.model is None and args.data is None:
        from ncjax import demo

        which = "clean twin" if args.demo_clean else "backdoored at 33"
        print(f"no --model/--data: scanning the embedded demo ({which}).")
        demo_x, demo_y = demo.demo_images()
        if preprocessing_auto(args):
            raise UsageError("--preprocess auto reads raw pixels; the demo's images are the model's inputs already, "
                             "so leave it out.")
        return _Inputs(demo.demo_model(infected=not args.demo_clean), demo_x, demo_y, False,
                       str(demo.demo_model_path(infected=not args.demo_clean)), "ncjax.demo.demo_images()",
                       config.preprocessing)
    if args.model is None or args.data is None:
        raise UsageError("give both --model and --data (clean images), or neither to scan the embedded demo.")
    model = load_model(args.model, architecture=args.architecture, layout=args.layout,
                       input_shape=parse_input_shape(args.input_shape))
    clean = load_images(args.data, model.input_shape, key=args.data_key)
    convention = auto_convention(model, clean, force=args.force) if _auto(args, clean) else None
    preprocessing = config.preprocessing if convention is None else convention.best.preprocessing
    scale = (f"raw 0..255 pixels, put through {preprocessing.describe()}" if clean.pixels else
             "float arrays, taken as the model's inputs as they are (--preprocess applies to image files and uint8 "
             "arrays)")
    return _Inputs(model, clean.in_model_scale(preprocessing), clean.labels, clean.pixels, args.model, args.data,
                   preprocessing, convention, (f"data read as {scale}", *clean.notes))


def _auto(args: argparse.Namespace, clean: CleanImages) -> bool:
    """Whether to choose the input convention: asked for (--preprocess auto), or by default for labelled raw
    pixels (on models trained on x/255, [-1, 1] or mean/std, raw pixels still classify 75-93 % right, so a wrong
    default would pass the pre-flight unseen: experiments/conventions.md)."""
    return preprocessing_auto(args) or (not preprocessing_given(args) and clean.pixels and clean.labels is not None)


def decision_from_args(args: argparse.Namespace) -> DecisionConfig:
    return DecisionConfig(rule=args.verdict, threshold=args.threshold, min_ratio=args.min_ratio,
                          suspicious_ratio=args.suspicious_ratio, min_gap=args.min_gap,
                          source_check=args.source_check, max_spread=args.max_spread, quantize=not args.no_quantize,
                          pairs=args.pairs, min_asymmetry=args.min_asymmetry, max_p=args.max_p)


def _printer(args: argparse.Namespace, progress: _Progress, requested: list[str], margin_config: ScanConfig):
    """The pipeline's callback: the lines the command prints on the way, the progress bars, and SIGTERM."""
    def on_event(event: PipelineEvent) -> None:
        if event.progress is not None:
            progress.update(event.progress)
        elif event.stage == "margins" and event.margin is None:
            progress.close()
            progress.max_epochs = margin_config.max_epochs
            print(f"margin search: every label's largest logit margin, {margin_config.restarts} random starts each, "
                  f"{margin_config.max_epochs * margin_config.steps_per_epoch} steps")
        elif event.margin is not None:
            progress.close()
        elif event.focus is not None:
            progress.close()
            print(event.focus.line())
        elif event.preflight is not None:
            check = event.preflight
            if check.given is not None:
                print(f"pre-flight: the model classifies {check.given.accuracy:.1%} of {check.images} labelled clean "
                      f"images correctly (chance {check.chance:.1%})")
            problem = check.problem()
            if problem and args.force:
                print(f"note: pre-flight: {problem}; scanning anyway (--force).")
            if event.work is not None:
                print(event.work.line())
                progress.estimate = f"estimated {duration_text(event.work.seconds)}"
                beyond = event.work.problem(args.max_hours)
                if beyond and args.force:
                    print(f"note: {beyond}; scanning anyway (--force).")
        elif event.pair_classes:
            progress.close()
            count = event.pair_classes
            print(f"pair scan: {count * (count - 1)} (source, target) pairs of {count} classes, one trigger each")
        elif event.pairs is not None:
            progress.close()
        elif event.skipped is not None:
            print(f"note: {event.skipped}, so the source-specific check of the candidates was skipped.")
        elif event.candidates:
            labels = ", ".join(map(str, event.candidates))
            print(f"source check: label{'s' if len(event.candidates) > 1 else ''} {labels}, one trigger from each of "
                  f"up to {event.sources_per_label} other classes")
        if requested:
            raise KeyboardInterrupt(requested[0])

    return on_event


def _interruptible(scan: Callable[[list[str]], ScanOutcome]) -> ScanOutcome:
    """Run `scan(requested)` with SIGTERM (what schedulers send) ending it like Ctrl-C once the epoch in flight
    is saved. The handler only records the signal: raising from it could land inside a C call (numpy, XLA) and
    surface as a SystemError; the pipeline's callback, which runs after each epoch's checkpoint, raises it.
    Only the main thread may set handlers: elsewhere SIGTERM is left to whoever owns the process."""
    requested: list[str] = []
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: requested.append(signal.Signals(signum).name)) \
        if main_thread else None
    try:
        return scan(requested)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


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


def _next_step(verdict, out: Path, args: argparse.Namespace) -> str:
    """What to open or run after this verdict: the last line the command prints."""
    if verdict.status == "infected" and verdict.evidence == ("margin",):
        return (f"open {out}/summary.png (the margin chart): only the margin statistic found this label, so its "
                "reversed trigger is not small and `ncjax mitigate`, which unlearns that trigger, may not remove the "
                "backdoor; retrain from trusted data if you can")
    if verdict.status == "infected":
        pictures = f"open {out}/summary.png and the named labels' fusion pictures"
        if args.model is None:  # the embedded demo: no model file to repair
            return pictures
        return (f"{pictures}; to remove the backdoor: ncjax mitigate --model {printable(args.model, limit=200)} "
                f"--data {printable(args.data, limit=200)} --scan {out} --out repaired{Path(args.model).suffix}")
    if verdict.status == "suspicious":
        return (f"open {out}/summary.png; rerun with other seeds (--seed) or --preset paper before deciding: a "
                "SUSPICIOUS scan is evidence to look at, not a finding")
    if verdict.status == "inconclusive":
        return (f"open {out}/summary.png (the purple labels never reached the threshold); check --preprocess and "
                "rerun, or scan longer (--preset paper)")
    return f"open {out}/summary.png to see every label's trigger; report.json holds the numbers"


def _run_record(args: argparse.Namespace, inputs: _Inputs, command: Sequence[str] | None) -> dict[str, Any]:
    record = run_record(seed=args.seed, preset=_preset(args), model_path=args.model, data_path=args.data,
                        data_key=args.data_key, command=command)
    return record if inputs.convention is None else {**record, "preprocess_auto": inputs.convention.as_dict()}


def run(args: argparse.Namespace, *, command: Sequence[str] | None = None) -> int:
    config = config_from_args(args)
    decision = decision_from_args(args)
    if args.no_compile_cache:
        disable_compile_cache()
    else:
        enable_compile_cache(args.compile_cache)
    inputs = _inputs(args, config)
    config = dataclasses.replace(config, preprocessing=inputs.preprocessing)
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the scan in --out and --overwrite removes it; give one of them.")
    out = prepare_out(args.out, what="--out")  # before the scan, so a bad --out costs no scan
    with hold_out(out, what="--out"):  # before claiming it: --overwrite must not delete a running scan's files
        claim_out(out, resume=args.resume, overwrite=args.overwrite, what="--out", options=("--resume", "--overwrite"))
        return _scan_into(out, args, inputs, config, decision, command)


def _scan_into(out: Path, args: argparse.Namespace, inputs: _Inputs, config: ScanConfig, decision: DecisionConfig,
               command: Sequence[str] | None) -> int:
    """The scan into the held and claimed `out`, with what the command prints around it."""
    print(f"model: {printable(inputs.model_name, limit=200)} ({inputs.model.num_classes} classes, input "
          f"{inputs.model.input_shape}); data: {printable(inputs.data_name, limit=200)} ({len(inputs.images)} images); "
          f"preset: {_preset(args)}; loss: {config.loss}")
    if inputs.convention is not None:
        how = "--preprocess auto" if preprocessing_auto(args) else "--preprocess auto (the default for labelled pixels)"
        print(f"{how}: {inputs.convention.line()}")
        if inputs.convention.problem():
            print(f"note: {inputs.convention.problem()}; scanning with the best anyway (--force).")
    for note in inputs.notes:
        print(f"note: {note}")
    if config.preprocessing.mode == "raw" and inputs.images.size and float(inputs.images.max()) <= 1.0:
        print("note: the model's inputs lie in [0, 1] but --preprocess is raw (0..255 pixels), so triggers are "
              "blended on the wrong scale: if the model takes x / 255, pass --preprocess mnist.")
    state = out / STATE_FILE
    if args.resume:
        print(f"resuming the scan in {out}/ from its checkpoints" if state.exists() else
              f"note: --resume, but {out}/ holds no checkpoint; starting afresh")
    progress = _Progress(config.max_epochs, not args.no_progress)
    try:
        outcome = _interruptible(lambda requested: scan_model(
            inputs.model, inputs.images, inputs.labels, key=jax.random.key(args.seed), config=config,
            decision=decision, scan_labels=args.labels, from_pixels=inputs.from_pixels, force=args.force, out=out,
            resume=args.resume, prefix=args.prefix, model_name=inputs.model_name, data_name=inputs.data_name,
            run=_run_record(args, inputs, command), max_hours=args.max_hours,
            callback=_printer(args, progress, requested, config.margin_search())))
    except KeyboardInterrupt as e:
        progress.close()
        checked = out / SOURCE_STATE_FILE
        print(f"\ninterrupted{f' ({e})' if str(e) else ''}: the scan's state after its last finished epoch is in "
              f"{state}{f' and the source check in {checked}' if checked.exists() else ''}; rerun the same command "
              "with --resume to continue.", file=sys.stderr)
        return EXIT_TERMINATED if str(e) == "SIGTERM" else EXIT_INTERRUPTED
    finally:
        progress.close()
    verdict = outcome.verdict
    _print_verdict(verdict)
    print(f"wrote {len(outcome.result.labels) * 3} trigger pictures, summary.png, report.json and {TRIGGERS_FILE} to "
          f"{out}/ (scan {outcome.result.wall_time_s:.0f} s)")
    print(f"next: {_next_step(verdict, out, args)}")
    if verdict.status == "inconclusive":
        return EXIT_INCONCLUSIVE
    return EXIT_INFECTED if verdict.infected and args.fail_on_detect else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    return run_command(parser, lambda args: run(args, command=[*parser.prog.split(), *argv]), argv)


if __name__ == "__main__":
    sys.exit(main())
