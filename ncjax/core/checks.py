"""Checks of settings' values, shared by every settings class: each error names the class, the field, what it
needs and what it got."""
from __future__ import annotations

import math
from typing import Any

from ncjax.errors import ConfigError


def is_real(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(owner: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """owner.name is a finite number within [low, high] (an open end with low_open/high_open); None with
    `optional`."""
    value = getattr(owner, name)
    if optional and value is None:
        return
    ok = is_real(value) and math.isfinite(value) and (
        low is None or (value > low if low_open else value >= low)) and (
        high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ConfigError(f"{type(owner).__name__}.{name} must be a finite number "
                          f"{_interval(low, high, low_open, high_open)}, got {value!r}.")


def check_whole(owner: Any, name: str, *, low: int = 1, optional: bool = False) -> None:
    """owner.name is a whole number >= low (None with `optional`)."""
    value = getattr(owner, name)
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{type(owner).__name__}.{name} must be a whole number >= {low}"
                          f"{' or None' if optional else ''}, got {value!r}.")


def check_flag(owner: Any, name: str, *, optional: bool = False) -> None:
    """owner.name is True or False (or None with `optional`)."""
    value = getattr(owner, name)
    if not isinstance(value, bool) and not (optional and value is None):
        raise ConfigError(f"{type(owner).__name__}.{name} must be True or False"
                          f"{' (or None)' if optional else ''}, got {value!r}.")


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""
