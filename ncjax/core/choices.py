"""Settings whose values are `Literal` choices: read the choices from the annotations, refuse anything else.

Dataclasses here use `from __future__ import annotations`, so their field types are strings until
`typing.get_type_hints` resolves them; both the validation and the command line read them from there.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Hashable
from typing import Any, Literal, TypeVar

from ncjax.errors import ConfigError


def literal_choices(annotation: Any) -> tuple | None:
    """The allowed values of a `Literal[...]` annotation (also inside `X | None`), else None."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arm in typing.get_args(annotation):
            if typing.get_origin(arm) is Literal:
                return typing.get_args(arm)
    return None


@functools.cache
def field_types(cls: Hashable) -> dict[str, Any]:
    """A dataclass's resolved field annotations."""
    return typing.get_type_hints(cls)


ChoiceT = TypeVar("ChoiceT", bound=str)


def match_choice(text: str, choices: tuple[ChoiceT, ...]) -> ChoiceT | None:
    """The one of `choices` equal to `text` (typed as a choice), or None."""
    return next((choice for choice in choices if choice == text), None)


def check_choice(value: Any, choices: tuple, what: str) -> None:
    """ConfigError naming `what` and listing the choices unless `value` is one of them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{what} must be one of {listed}; got {value!r}.")


def check_literal_fields(instance: Any) -> None:
    """Every `Literal` field of a dataclass instance holds one of its choices (None where the type allows)."""
    cls: type = type(instance)
    for f in dataclasses.fields(instance):
        annotation = field_types(cls)[f.name]
        choices = literal_choices(annotation)
        value = getattr(instance, f.name)
        if choices is None or (value is None and typing.get_origin(annotation) is not Literal):
            continue
        check_choice(value, choices, f"{cls.__name__}.{f.name}")
