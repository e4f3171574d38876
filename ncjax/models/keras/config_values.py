"""Types and ranges of the Keras layer-config values ncjax reads, checked before any array is built.

A config is data from the file: `units: 3.0`, `use_bias: "yes"`, `groups: 0`, a NaN slope or a padding of 1e9
would otherwise load and be scanned with made-up meaning, or fail deep in a builder. Keys are checked by name
wherever they appear, as Keras gives each name one meaning across its layers.
"""
from __future__ import annotations

import math
from typing import Any

from ncjax.core.printable import one_line
from ncjax.errors import ModelFileError

LIMIT = 1 << 16  # no window, unit count or padding of an image classifier comes near this
POSITIVE_INTS = ("units", "filters", "groups", "depth_multiplier")
POSITIVE_INT_TUPLES = ("kernel_size", "strides", "pool_size", "dilation_rate", "size")
BOOLEANS = ("use_bias", "keepdims")
FINITE_NUMBERS = ("epsilon", "momentum", "alpha", "negative_slope", "threshold", "max_value", "stddev")
# Keys whose meaning depends on the layer: booleans in the normalizations, numbers (or lists) in Rescaling.
BOOLEANS_OF = {"BatchNormalization": ("center", "scale"), "LayerNormalization": ("center", "scale")}
NUMBERS_OF = {"Rescaling": ("scale", "offset")}
NON_NEGATIVE_INT_NESTS = {"ZeroPadding2D": "padding", "Cropping2D": "cropping"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _ints(value: Any) -> list:
    """The leaves of an int or a nested list of ints (anything else is returned as is, to be refused)."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _ints(item)]
    return [value]


def check_config_values(class_name: str, config: dict[str, Any], where: str) -> None:
    """Refuse a layer config whose values have the wrong type or an absurd range, naming the key."""
    if not isinstance(config, dict):
        raise ModelFileError(f"{where}: the layer config is a {type(config).__name__}, not a JSON object.")

    def refuse(key: str, expected: str) -> ModelFileError:
        return ModelFileError(f"{where}: {key}={one_line(repr(config[key]), limit=80)} is not {expected}; the file is "
                              "malformed.")

    for key in POSITIVE_INTS:
        if key in config and not (_is_int(config[key]) and 1 <= config[key] <= LIMIT):
            raise refuse(key, f"a positive int (at most {LIMIT})")
    for key in POSITIVE_INT_TUPLES:
        if key in config and config[key] is not None:
            leaves = _ints(config[key])
            if not leaves or len(leaves) > 3 or not all(_is_int(v) and 1 <= v <= LIMIT for v in leaves):
                raise refuse(key, f"a positive int or a tuple of them (at most {LIMIT})")
    for key in BOOLEANS + BOOLEANS_OF.get(class_name, ()):
        if key in config and not isinstance(config[key], bool):
            raise refuse(key, "true or false")
    for key in FINITE_NUMBERS:
        if key in config and config[key] is not None and not _is_number(config[key]):
            raise refuse(key, "a finite number")
    for key in NUMBERS_OF.get(class_name, ()):
        if key in config and not all(_is_number(v) for v in _ints(config[key])):
            raise refuse(key, "a finite number or a list of them")
    if "rate" in config and not (_is_number(config["rate"]) and 0 <= config["rate"] <= 1):
        raise refuse("rate", "a number in [0, 1]")
    nest = NON_NEGATIVE_INT_NESTS.get(class_name)
    if nest in config and not all(_is_int(v) and 0 <= v <= LIMIT for v in _ints(config[nest])):
        raise refuse(nest, f"non-negative ints (at most {LIMIT})")
