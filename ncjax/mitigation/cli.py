"""`python -m ncjax.mitigate --model M --data D --scan OUT --out repaired.h5`: remove the triggers a scan found.

The triggers are the exact ones the scan wrote to OUT/triggers.npz; by default those of the labels its verdict
named. Half of the clean images (per class) are held apart and measure the repair; the report (clean accuracy,
each trigger's attack success, before and after) goes to the --report file. Exit codes: 0 done, 2 bad input.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from ncjax.cli.options import (
    ARCHITECTURE_HELP,
    OneLineParser,
    add_dataclass_flags,
    add_preprocessing_flags,
    given_values,
    label_list,
    preprocessing_flag,
    preprocessing_given,
    run_command,
    seed,
    settings_from_flags,
)
from ncjax.core.digest import file_sha256
from ncjax.core.printable import printable
from ncjax.data.images import load_images
from ncjax.data.preprocess import Preprocessing
from ncjax.errors import UsageError
from ncjax.mitigation.api import MitigationResult, mitigate, triggers_for
from ncjax.mitigation.config import MitigationConfig
from ncjax.mitigation.known_trigger import read_true_trigger
from ncjax.mitigation.progress import MitigationProgress
from ncjax.mitigation.write import model_suffix, reload_model, save_model
from ncjax.models.classifier import LAYOUTS
from ncjax.models.loading import load_model, parse_input_shape
from ncjax.pipeline.report import write_json_atomic
from ncjax.pipeline.triggers import load_triggers

EXIT_OK, EXIT_INTERRUPTED = 0, 130


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m ncjax.mitigate", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", required=True, help="the Keras (.h5/.keras) or ONNX (.onnx) model the scan examined")
    p.add_argument("--data", required=True, help="clean images with labels, as for python -m ncjax.run")
    p.add_argument("--data-key", help="name of the image array in --data")
    p.add_argument("--layout", choices=LAYOUTS, help="an ONNX model's input layout, where it is ambiguous")
    p.add_argument("--architecture", help=ARCHITECTURE_HELP)
    p.add_argument("--input-shape", help="H,W,C for models that leave their image size open")
    p.add_argument("--scan", required=True, help="the scan's output folder (its triggers.npz) or a triggers file")
    p.add_argument("--labels", type=label_list, help="comma-separated labels whose triggers to remove (default: "
                                                     "those the scan's verdict named)")
    p.add_argument("--out", required=True, help="the repaired model (.h5 for Keras models, .onnx for ONNX ones); "
                                                "for --method filter, the filter file (.npz)")
    p.add_argument("--report", help="the report (JSON; default: --out with .report.json)")
    p.add_argument("--layer", help="prune/filter: the hidden layer (a layer name as in the model summary, or an "
                                   "ONNX node name; default: the last hidden layer with weights)")
    p.add_argument("--true-trigger", help="a known trigger to measure too: MASK.png,PATTERN.png (mask gray 0..255, "
                                          "pattern in raw pixels) or an .npz with mask and pattern")
    p.add_argument("--true-target", type=int, help="the known trigger's label (default: the one label removed)")
    add_preprocessing_flags(p, default_text="the scan's, from its triggers.npz")
    p.add_argument("--seed", type=seed, default=0, help="the PRNG seed of the split, stamping and batches (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--force", action="store_true", help="repair even though the scan's report.json records another "
                                                        "model file (its sha256) than --model")
    group = p.add_argument_group("mitigation settings (MitigationConfig)")
    add_dataclass_flags(group, MitigationConfig)
    return p


def _preprocessing(args: argparse.Namespace, recorded: Preprocessing | None) -> Preprocessing:
    if not preprocessing_given(args):
        return recorded or Preprocessing()
    return preprocessing_flag(args)


def _outputs(args: argparse.Namespace, method: str, model) -> tuple[Path, Path]:
    out = Path(args.out)
    wanted = ".npz" if method == "filter" else model_suffix(model)
    if out.suffix.lower() != wanted:
        what = "the filter" if method == "filter" else f"a {model.roles.kind} model"
        raise UsageError(f"--out {args.out!r}: {what} is written as a {wanted} file; name it ...{wanted}.")
    if out.is_dir() or not out.parent.is_dir():
        raise UsageError(f"--out {args.out!r} must be a file in an existing folder.")
    if out.exists() and os.path.samefile(out, args.model):
        raise UsageError(f"--out {args.out!r} is the model itself; write the repaired model to another file, so the "
                         "original stays.")
    report = Path(args.report) if args.report else out.with_name(out.stem + ".report.json")
    return out, report


def _check_scanned_model(args: argparse.Namespace) -> None:
    """Refuse triggers from a scan of another model: report.json beside them records the scanned file's sha256."""
    folder = Path(args.scan) if Path(args.scan).is_dir() else Path(args.scan).parent
    try:
        recorded = (json.loads((folder / "report.json").read_text()).get("run") or {}).get("model_sha256")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded is None:
        print(f"note: {printable(str(folder), limit=200)} holds no report.json recording the scanned model's sha256, "
              "so --model is not checked against the scan.")
        return
    if recorded != file_sha256(args.model):
        message = (f"--scan {printable(args.scan, limit=200)} is a scan of another model file (sha256 "
                   f"{recorded[:12]}...) than --model {printable(args.model, limit=200)}")
        if not args.force:
            raise UsageError(message + "; give that scan's model, or --force to use its triggers anyway.")
        print(f"note: {message}; going on (--force).")


def run(args: argparse.Namespace) -> int:
    config = settings_from_flags(MitigationConfig, MitigationConfig,
                                 **given_values(args, [f.name for f in dataclasses.fields(MitigationConfig)]))
    model = load_model(args.model, architecture=args.architecture, layout=args.layout,
                       input_shape=parse_input_shape(args.input_shape))
    out, report_path = _outputs(args, config.method, model)
    _check_scanned_model(args)
    loaded = load_triggers(args.scan)
    preprocessing = _preprocessing(args, loaded.preprocessing)
    triggers = triggers_for(loaded.triggers, args.labels)
    clean = load_images(args.data, model.input_shape, key=args.data_key)
    images, labels = clean.in_model_scale(preprocessing), clean.labels
    true_trigger = read_true_trigger(args.true_trigger, args.true_target, triggers, model.input_shape)
    print(f"{config.method}: model {printable(args.model, limit=200)}, triggers of label(s) "
          f"{', '.join(map(str, triggers.labels))} from {printable(args.scan, limit=200)}; {len(images)} clean images")
    bar = None if args.no_progress else _ProgressBar()
    try:
        result = mitigate(model, images, labels, triggers, key=jax.random.key(args.seed), config=config,
                          preprocessing=preprocessing, layer=args.layer, true_trigger=true_trigger, callback=bar)
    finally:
        if bar is not None:
            bar.close()
    for line in summary_lines(result):
        print(line)
    try:
        written = _write(result, out)
    except OSError as e:
        raise UsageError(f"cannot write {str(out)!r} ({e.strerror or e}); nothing else was written.") from None
    report = {"model": args.model, "data": args.data, "scan": args.scan, "out": str(out), **result.as_dict(),
              "read_back": written}
    write_json_atomic(report, report_path)
    print(f"wrote {out} and {report_path}")
    return EXIT_OK


class _ProgressBar:
    """A tqdm bar on stderr, opened at the first progress report."""

    def __init__(self):
        self.bar = None

    def __call__(self, progress: MitigationProgress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.total, unit="step", file=sys.stderr, dynamic_ncols=True, desc=progress.stage)
        self.bar.n = progress.done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write(result: MitigationResult, out: Path) -> dict:
    """Write the repaired model (or the filter) and read it back; returns what the read-back found."""
    if result.input_filter is not None:
        result.input_filter.save(out)
        return {"written": str(out)}
    save_model(result.model, out)
    again = reload_model(result.model, out)
    probe = jax.random.uniform(jax.random.key(0), (8, *result.model.input_shape), maxval=255.0)
    difference = float(np.max(np.abs(np.asarray(again(probe)) - np.asarray(result.model(probe)))))
    print(f"read back {out}: the largest logit difference from the repaired model is {difference:.2g}")
    return {"written": str(out), "max_logit_difference": difference}


def _percent(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"


def summary_lines(result: MitigationResult) -> list[str]:
    """What the CLI prints: the split, each figure before -> after, and the method's own outcome."""
    lines = [f"{result.method}: learned from {result.train_images} images, measured on {result.holdout_images} "
             f"held apart; {result.seconds:.0f} s"]
    before, after = result.before, result.after
    lines.append(f"clean accuracy: {_percent(before.clean_accuracy)} -> {_percent(after.clean_accuracy)}")
    for label in result.labels:
        lines.append(f"attack success of the reversed trigger of {label}: {_percent(before.attack_success[label])} -> "
                     f"{_percent(after.attack_success[label])}")
    true_after = after.true_attack_success or {}  # measured with the same known triggers as before
    for label, value in (before.true_attack_success or {}).items():
        lines.append(f"attack success of the true trigger of {label}: {_percent(value)} -> "
                     f"{_percent(true_after[label])}")
    if result.prune is not None:
        curve = result.prune
        lines.append(f"pruned {curve.pruned[curve.chosen]} of {curve.units} neurons of {printable(curve.layer)} "
                     f"({curve.stop})")
    if result.filter_rates is not None:
        rates = result.filter_rates
        caught = ", ".join(f"{k}: {_percent(v)}" for k, v in rates.caught.items())
        per_trigger = len(next(iter(rates.neurons.values())))
        lines.append(f"filter: {per_trigger} neuron(s) per trigger; flags {_percent(rates.false_positive_rate)} of "
                     f"clean held-apart images; catches stamped images {caught}"
                     + "".join(f", true trigger of {k}: {_percent(v)}" for k, v in (rates.true_caught or {}).items()))
    return lines


def _interruptible(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), _interruptible, argv)
