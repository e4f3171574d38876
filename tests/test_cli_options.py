"""Flags generated from ScanConfig: every field parses a valid value into the config and refuses an invalid one."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from ncjax import ScanConfig
from ncjax.cli.options import add_dataclass_flags
from ncjax.cli.scan import OWN_FLAG_FIELDS, UNFLAGGED_FIELDS, build_parser, config_from_args
from ncjax.core.choices import field_types, literal_choices
from ncjax.errors import UsageError
from ncjax.search.config import PRESETS

FIELDS = [f for f in dataclasses.fields(ScanConfig) if f.name not in OWN_FLAG_FIELDS | UNFLAGGED_FIELDS]
# A valid value for a numeric field, chosen inside the field's range and unlike the presets' values.
NUMBERS = {"batch_size": "16", "nb_sample": "64", "max_epochs": "7", "learning_rate": "0.05", "beta_1": "0.25",
           "beta_2": "0.75", "adam_epsilon": "1e-6", "init_cost": "0.01", "patience": "2", "cost_multiplier": "1.5",
           "early_stop_threshold": "0.9", "early_stop_patience": "4", "attack_success_threshold": "0.95",
           "upsample": "2", "restarts": "3", "label_chunk": "3", "steps_per_dispatch": "2", "min_lane_width": "8",
           "warmup_epochs": "5", "candidates": "4", "anchors": "1", "check_epochs": "20",
           "pair_epochs": "12"}


BOOLEANS = ("bool", bool, "bool | None")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _valid_and_invalid(f: dataclasses.Field):
    choices = literal_choices(field_types(ScanConfig)[f.name])
    if choices is not None:
        value = next(c for c in choices if c != f.default)
        return [_flag(f.name), value], value, [_flag(f.name), "bogus"]
    if f.type in BOOLEANS:
        return ["--no-" + f.name.replace("_", "-")], False, [_flag(f.name) + "=yes"]
    parse = int if f.type.startswith("int") else float
    return [_flag(f.name), NUMBERS[f.name]], parse(NUMBERS[f.name]), [_flag(f.name), "many"]


def test_every_numeric_field_has_a_test_value():
    numeric = {f.name for f in FIELDS if literal_choices(field_types(ScanConfig)[f.name]) is None
               and f.type not in BOOLEANS}
    assert numeric == set(NUMBERS)


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_valid_value_reaches_the_config(f):
    argv, expected, _ = _valid_and_invalid(f)
    config = config_from_args(build_parser().parse_args([*argv, "--preset", "fast"]))
    assert getattr(config, f.name) == expected


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_invalid_value_is_refused_with_exit_2(f, capsys):
    _, _, argv = _valid_and_invalid(f)
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert _flag(f.name) in capsys.readouterr().err


def test_matmul_precision_default_is_accepted():
    """It was an int flag once: 'invalid int value: default'."""
    assert config_from_args(build_parser().parse_args(["--matmul-precision", "default"])).matmul_precision == "default"


def test_every_flag_shows_its_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in FIELDS:
        assert " ".join(f.metadata["help"].split()) in text, f.name


def test_help_shows_each_presets_value_where_the_presets_differ(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    presets = {name: getattr(ScanConfig, name)() for name in PRESETS}
    differing = [f.name for f in FIELDS if len({repr(getattr(c, f.name)) for c in presets.values()}) > 1]
    assert "max_epochs" in differing and "learning_rate" not in differing
    for name in differing:
        shown = ", ".join(f"{preset}: {getattr(config, name)}" for preset, config in presets.items())
        assert f"({shown})" in text, name
    assert f"(default: {ScanConfig().learning_rate})" in text


def test_a_settings_error_names_the_flags_not_the_python_fields(capsys):
    args = build_parser().parse_args(["--nb-sample", "4", "--batch-size", "8", "--early-stop-patience", "-1"])
    with pytest.raises(UsageError) as info:
        config_from_args(args)
    assert "ScanConfig" not in str(info.value) and "_" not in str(info.value).split(",")[0]
    assert "--nb-sample" in str(info.value) or "--early-stop-patience" in str(info.value)


def test_a_field_without_help_or_flag_type_is_a_programming_error():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Bare:
        size: int = 1

    with pytest.raises(TypeError, match="no help text"):
        add_dataclass_flags(argparse.ArgumentParser(), Bare)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Odd:
        shape: tuple = dataclasses.field(default=(), metadata={"help": "a shape"})

    with pytest.raises(TypeError, match="no flag for type"):
        add_dataclass_flags(argparse.ArgumentParser(), Odd)
