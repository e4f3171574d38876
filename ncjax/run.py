"""`python -m ncjax.run --model model.h5 --data clean.npz`: scan every label, print the verdict, write pictures.

With no --model and no --data it scans the embedded demo (a synthetic traffic-sign model backdoored at 33).
The three lines printed first are the reference's MAD test; the verdict follows the gap rule (--verdict gap:
MAD-flagged labels whose norms stand apart from the rest by --min-gap) unless --verdict reference.
Exit codes: 0 the scan finished (whatever the verdict), 2 bad input, 3 infected with --fail-on-detect,
130 interrupted (the state of the last finished epoch is kept: rerun with --resume).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import warnings
from pathlib import Path
from typing import Sequence

import jax

from ncjax.cli_options import add_dataclass_flags, given_values
from ncjax.config import ScanConfig
from ncjax.data import load_images
from ncjax.errors import NCJaxError, UsageError
from ncjax.loading import load_model, parse_input_shape
from ncjax.outlier import l1_norms
from ncjax.pictures import save_trigger_pictures
from ncjax.preprocess import Preprocessing
from ncjax.report import build_report, write_json_atomic
from ncjax.scan import scan_all_labels
from ncjax.summary import save_summary
from ncjax.verdict import decide

EXIT_OK, EXIT_BAD_INPUT, EXIT_INFECTED, EXIT_INTERRUPTED = 0, 2, 3, 130
STATE_FILE = "scan_state.npz"
# ScanConfig fields with a flag of their own (--preprocess, --bgr) rather than a generated one.
OWN_FLAG_FIELDS = {"preprocessing"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ncjax.run", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", help="Keras (.h5/.keras) or ONNX (.onnx) model; default: the embedded demo model")
    p.add_argument("--layout", choices=["NCHW", "NHWC"], help="an ONNX model's input layout, where it is ambiguous")
    p.add_argument("--input-shape", help="H,W,C for models that leave their image size open")
    p.add_argument("--data", help="clean images: .npz (x_roi or x, y), reference .h5 (X_test), GTSRB folder, "
                                  "or class sub-folders; default: the demo's synthetic images")
    p.add_argument("--data-key", help="name of the image array in --data")
    p.add_argument("--demo-clean", action="store_true", help="scan the demo's clean twin instead of the infected one")
    p.add_argument("--out", default="ncjax_out", help="folder for pictures and report.json (default: ncjax_out)")
    p.add_argument("--prefix", default="gtsrb", help="picture file prefix, as the reference's (default: gtsrb)")
    p.add_argument("--preset", choices=["paper", "fast"], help="paper: the reference's schedule; fast: a CPU "
                                                               "budget (default: fast on CPU, paper otherwise)")
    p.add_argument("--labels", help="comma-separated labels to scan (default: all)")
    p.add_argument("--preprocess", default="raw", help="raw|mnist|inception|imagenet|torch|OFFSET,SCALE: how model "
                                                      "inputs relate to raw 0..255 pixels (default: raw)")
    p.add_argument("--bgr", action="store_true", help="with OFFSET,SCALE: the model takes BGR channels")
    p.add_argument("--seed", type=int, default=0, help="the PRNG seed of the triggers and batches (default: 0)")
    p.add_argument("--threshold", type=float, default=2.0, help="anomaly-index threshold (default: 2)")
    p.add_argument("--verdict", choices=["gap", "reference"], default="gap",
                   help="gap: flagged labels must also stand apart from the next label's norm by --min-gap (measured "
                        "to avoid the reference rule's false positives on clean models); reference: the MAD rule "
                        "alone (default: gap)")
    p.add_argument("--min-gap", type=float, default=1.5, help="norm ratio for --verdict gap (default: 1.5)")
    p.add_argument("--no-quantize", action="store_true", help="MAD on exact norms instead of the PNG-quantized "
                                                             "ones the reference reads back")
    p.add_argument("--resume", action="store_true", help="continue an interrupted scan from OUT/scan_state.npz")
    p.add_argument("--fail-on-detect", action="store_true", help="exit 3 when the verdict is infected")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    group = p.add_argument_group("scan settings (ScanConfig)", "left out, a setting takes the preset's value; the "
                                 "defaults shown are the paper preset's")
    add_dataclass_flags(group, ScanConfig, skip=OWN_FLAG_FIELDS)
    return p


def _preprocessing(text: str, bgr: bool) -> Preprocessing:
    if text in ("raw", "mnist", "inception", "imagenet", "torch"):
        if bgr:
            raise UsageError(f"--bgr goes with --preprocess OFFSET,SCALE; '{text}' fixes the channel order.")
        return Preprocessing(mode=text)  # type: ignore[arg-type]
    try:
        offset, scale = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--preprocess must be raw, mnist, inception, imagenet, torch or OFFSET,SCALE; got {text!r}.") from None
    return Preprocessing(mode="custom", offset=offset, scale=scale, channel_order="bgr" if bgr else "rgb")


def _preset(args: argparse.Namespace) -> str:
    return args.preset or ("fast" if jax.default_backend() == "cpu" else "paper")


def config_from_args(args: argparse.Namespace) -> ScanConfig:
    preset = _preset(args)
    changes = given_values(args, [f.name for f in dataclasses.fields(ScanConfig) if f.name not in OWN_FLAG_FIELDS])
    changes["preprocessing"] = _preprocessing(args.preprocess, args.bgr)
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


def run(args: argparse.Namespace) -> int:
    if args.demo_clean and (args.model or args.data):
        raise UsageError("--demo-clean scans the embedded demo; leave out --model and --data.")
    if args.model is None and args.data is None:
        from ncjax import demo

        model = demo.demo_model(infected=not args.demo_clean)
        images, _ = demo.demo_images()
        model_name, data_name = str(demo.demo_model_path(infected=not args.demo_clean)), "ncjax.demo.demo_images()"
        print(f"no --model/--data: scanning the embedded demo ({'clean twin' if args.demo_clean else 'backdoored at 33'}).")
    elif args.model is None or args.data is None:
        raise UsageError("give both --model and --data (clean images), or neither to scan the embedded demo.")
    else:
        model = load_model(args.model, layout=args.layout, input_shape=parse_input_shape(args.input_shape))
        images, _ = load_images(args.data, model.input_shape, key=args.data_key)
        model_name, data_name = args.model, args.data
    config = config_from_args(args)
    if config.preprocessing.mode == "raw" and images.size and float(images.max()) <= 1.0:
        warnings.warn("the images lie in [0, 1] but --preprocess is raw (0..255 pixels): if the model takes "
                      "x / 255, pass --preprocess mnist.", stacklevel=1)
    labels = [int(v) for v in args.labels.split(",")] if args.labels else None
    preset = _preset(args)
    print(f"model: {model_name} ({model.num_classes} classes, input {model.input_shape}); data: {data_name} "
          f"({len(images)} images); preset: {preset}; loss: {config.loss}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state = out / STATE_FILE
    if state.exists() and not args.resume:
        print(f"note: {state} exists from an earlier scan; starting afresh (pass --resume to continue it).")
    bar, update = _progress(len(labels) if labels else model.num_classes, config.max_epochs, not args.no_progress)
    try:
        result = scan_all_labels(model, images, labels=labels, config=config, key=jax.random.key(args.seed),
                                 callback=update, checkpoint=state, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the scan's state after its last finished epoch is in {state}; rerun the same command "
              "with --resume to continue.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    norms = l1_norms(result.masks, quantize=not args.no_quantize)
    verdict = decide(norms, result.labels, rule=args.verdict, threshold=args.threshold, min_gap=args.min_gap)
    outliers = verdict.mad
    for line in outliers.lines():
        print(line)
    print(f"verdict: {verdict.line()}")
    if verdict.infected and set(outliers.flagged) - set(verdict.labels):
        others = ", ".join(str(v) for v in outliers.flagged if v not in verdict.labels)
        print(f"note: the reference's rule also flags {others}; their norms do not stand apart from the rest")
    if outliers.note:
        print(f"note: {outliers.note}")
    save_trigger_pictures(result, out, args.prefix)
    save_summary(out / "summary.png", result.masks, result.patterns, verdict,
                 title=f"{Path(model_name).name}: {verdict.headline()}")
    report = build_report(result, verdict, model=model_name, data=data_name,
                          extra={"quantized_norms": not args.no_quantize})
    write_json_atomic(report, out / "report.json")
    print(f"wrote {len(result.labels) * 3} trigger pictures, summary.png and report.json to {out}/ "
          f"(scan {result.wall_time_s:.0f} s)")
    return EXIT_INFECTED if verdict.infected and args.fail_on_detect else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return run(args)
    except NCJaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
