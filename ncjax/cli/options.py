"""Command-line flags generated from a settings dataclass: each field's annotation gives the flag's type, its
metadata["help"] the help line. `Literal` -> choices, `bool` -> --flag/--no-flag, int and float typed, `X | None`
the same as X (left out: the dataclass's default)."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from ncjax.core.choices import field_types, literal_choices
from ncjax.core.printable import one_line
from ncjax.core.version import __version__
from ncjax.data.convention import AUTO
from ncjax.data.preprocess import Preprocessing, parse_preprocessing
from ncjax.errors import ConfigError, NCJaxError, UsageError


def _base_type(annotation: Any) -> Any:
    """int for `int | None`, the annotation itself otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(arms) == 1:
            return arms[0]
    return annotation


def _default_text(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING:
        return ""
    return f" (default: {f.default})" if f.default is not None else ""


def _preset_defaults(name: str, presets: Mapping[str, Any]) -> str:
    """' (default: X)' when every preset agrees, else each preset's value."""
    values = {preset: getattr(config, name) for preset, config in presets.items()}
    if len(set(map(repr, values.values()))) == 1:
        value = next(iter(values.values()))
        return "" if value is None else f" (default: {value})"
    return " (" + ", ".join(f"{preset}: {value}" for preset, value in values.items()) + ")"


def add_dataclass_flags(group: argparse._ActionsContainer, cls: type, *, skip: Iterable[str] = (),
                        presets: Mapping[str, Any] | None = None) -> list[str]:
    """Add one flag per field of `cls` not in `skip`; returns the field names. Every flag defaults to None
    (not given), so the caller can tell what the user set from what a preset decides; with `presets` (name ->
    instance), each flag's help shows each preset's value where they differ."""
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        annotation = field_types(cls)[f.name]
        help_text = f.metadata.get("help")
        if not help_text:
            raise TypeError(f"{cls.__name__}.{f.name} has no help text: give it metadata={{'help': ...}}.")
        flag = "--" + f.name.replace("_", "-")
        help_text += _default_text(f) if presets is None else _preset_defaults(f.name, presets)
        choices = literal_choices(annotation)
        base = _base_type(annotation)
        if choices is not None:
            group.add_argument(flag, choices=choices, default=None, help=help_text)
        elif base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif base in (int, float):
            group.add_argument(flag, type=base, default=None, metavar=base.__name__.upper(), help=help_text)
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no flag for type {annotation!r}; add it to skip and "
                            "give it a flag of its own.")
        names.append(f.name)
    return names


def settings_from_flags(build: Callable[..., Any], cls: type, **values: Any) -> Any:
    """`build(**values)` (a settings class or a preset of it), its ConfigError reworded for a command-line user:
    `Cls.field_name` and bare field names with an underscore become the flags that set them (--field-name)."""
    try:
        return build(**values)
    except ConfigError as e:
        message = re.sub(rf"\b{cls.__name__}\.(\w+)", lambda m: _flag(m.group(1)), str(e))
        for name in (f.name for f in dataclasses.fields(cls) if "_" in f.name):
            message = re.sub(rf"(?<![-\w]){name}\b", _flag(name), message)
        raise UsageError(message) from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def given_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The generated flags the user gave, by field name."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


# A value that starts like a negative number: argparse would take "-1,0.0078" for an option.
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit 2, like every other ncjax error, with
    --version. A negative number list after a flag that takes a value (--preprocess -1,0.0078) is that flag's
    value."""

    invoked_as: str | None = None  # set by `ncjax <command>`, so help and errors name the command as typed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if OneLineParser.invoked_as is not None:
            kwargs["prog"] = OneLineParser.invoked_as
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"ncjax {__version__}")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._joined_negative_values(argv), namespace)

    def _joined_negative_values(self, argv: list[str]) -> list[str]:
        takes_value = {flag for action in self._actions if action.nargs is None and action.option_strings
                       for flag in action.option_strings}
        joined: list[str] = []
        for token in argv:
            if joined and joined[-1] in takes_value and _NEGATIVE_VALUE.match(token):
                joined[-1] = f"{joined[-1]}={token}"
            else:
                joined.append(token)
        return joined


def label_list(text: str) -> list[int]:
    """--labels: comma-separated non-negative ints, each once."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and len(part) < 10 for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of label numbers, e.g. 0,5,33")
    labels = [int(part) for part in parts]
    if len(set(labels)) != len(labels):
        raise argparse.ArgumentTypeError(f"{text!r} names a label twice")
    return labels


def seed(text: str) -> int:
    """--seed: an int in [0, 2**32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is outside 0 .. 2**32 - 1")
    return value


def finite_at_least(minimum: float, *, strict: bool = False):
    """A float flag type: finite and >= minimum (> minimum when strict)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {'>' if strict else '>='} {minimum:g}")
        return value

    parse.__name__ = "number"
    return parse


def probability(text: str) -> float:
    """A float flag type: a probability strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie strictly between 0 and 1")
    return value


def int_at_least(minimum: int):
    """An int flag type: a whole number >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= {minimum}")
        return value

    parse.__name__ = "whole number"
    return parse


def file_prefix(text: str) -> str:
    """--prefix: the start of a file name, never a path (pictures are written inside --out only)."""
    if not text or "/" in text or "\\" in text or text in (".", "..") or "\0" in text or len(text) > 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a file-name prefix (letters, digits, '_', '-'; no path)")
    return text


PREPROCESS_HELP = ("how the model's inputs relate to raw 0..255 pixels: raw, mnist (x/255), inception (x/127.5 - 1), "
                   "imagenet (caffe: BGR minus means), torch (torchvision's ImageNet mean/std), or OFFSET,SCALE "
                   "(input = pixel * SCALE + OFFSET, e.g. -1,0.00784313725490196)")
ARCHITECTURE_HELP = "a Keras weights-only .h5's architecture: the JSON file model.to_json() wrote"
AUTO_HELP = ("; auto: with labelled image files or uint8 arrays, try each of these (RGB and BGR) and keep the one "
             "the model classifies best")


def add_preprocessing_flags(parser: argparse._ActionsContainer, *, default_text: str = "raw",
                            auto: bool = False) -> None:
    """--preprocess, --mean and --std (None when not given) and --bgr; `auto`: --preprocess auto is offered."""
    parser.add_argument("--preprocess", help=f"{PREPROCESS_HELP}{AUTO_HELP if auto else ''} (default: {default_text})")
    parser.add_argument("--mean", help="per-channel means on pixels / 255, with --std: torchvision's Normalize, e.g. "
                                       "0.4914,0.4822,0.4465 (instead of --preprocess)")
    parser.add_argument("--std", help="per-channel deviations on pixels / 255, with --mean, e.g. 0.247,0.243,0.261")
    parser.add_argument("--bgr", action="store_true", help="the model takes its channels in BGR order (with any "
                                                           "--preprocess but imagenet, which is BGR already)")


def preprocessing_given(args: argparse.Namespace) -> bool:
    return args.preprocess is not None or args.mean is not None or args.std is not None or args.bgr


def preprocessing_auto(args: argparse.Namespace) -> bool:
    """--preprocess auto was given (alone: it tries both channel orders and the usual statistics itself)."""
    if args.preprocess != AUTO:
        return False
    if args.bgr or args.mean is not None or args.std is not None:
        raise UsageError("--preprocess auto tries both channel orders and the usual means and deviations itself; leave "
                         "out --bgr, --mean and --std, or give the convention instead of auto.")
    return True


def preprocessing_flag(args: argparse.Namespace) -> Preprocessing:
    """--preprocess (a mode or OFFSET,SCALE), --mean/--std and --bgr as a Preprocessing."""
    if args.preprocess == AUTO:
        raise UsageError("--preprocess auto is for scans (ncjax scan, ncjax audit); here give the model's convention "
                         "(a scan's report.json names the one auto chose).")
    try:
        return parse_preprocessing(args.preprocess, bgr=args.bgr, mean=args.mean, std=args.std)
    except ConfigError as e:
        raise UsageError(f"--preprocess/--mean/--std/--bgr: {e}") from None


EXIT_BAD_INPUT = 2


def run_command(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
                argv: Sequence[str] | None) -> int:
    """Parse `argv` and run: an NCJaxError ends in one line on stderr and exit 2, never a traceback."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return run(args)
    except NCJaxError as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_BAD_INPUT


def error_line(error: Exception) -> str:
    """What a command prints for an error: one line, whatever names from files the message holds."""
    return f"error: {one_line(error)}"
