"""Command-line flags generated from a settings dataclass: each field's annotation gives the flag's type, its
metadata["help"] the help line. `Literal` -> choices, `bool` -> --flag/--no-flag, int and float typed, `X | None`
the same as X (left out: the dataclass's default)."""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Iterable

from ncjax.choices import field_types, literal_choices


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


def add_dataclass_flags(group: argparse._ActionsContainer, cls: type, *, skip: Iterable[str] = (),
                        default_note: str = "") -> list[str]:
    """Add one flag per field of `cls` not in `skip`; returns the field names. Every flag defaults to None
    (not given), so the caller can tell what the user set from what a preset decides."""
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        annotation = field_types(cls)[f.name]
        help_text = f.metadata.get("help")
        if not help_text:
            raise TypeError(f"{cls.__name__}.{f.name} has no help text: give it metadata={{'help': ...}}.")
        flag = "--" + f.name.replace("_", "-")
        help_text += default_note or _default_text(f)
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


def given_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The generated flags the user gave, by field name."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
