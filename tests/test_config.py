"""ScanConfig and Preprocessing validate when built; presets are what they say."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import ncjax
from ncjax import Preprocessing, ScanConfig
from ncjax.data.preprocess import parse_described


def test_defaults_are_the_reference():
    c = ScanConfig()
    assert (c.batch_size, c.nb_sample, c.steps_per_epoch, c.max_epochs) == (32, 1000, 31, 1000)
    assert (c.learning_rate, c.beta_1, c.beta_2, c.adam_epsilon) == (0.1, 0.5, 0.9, 1e-7)
    assert (c.init_cost, c.patience, c.cost_multiplier, c.stop_patience) == (1e-3, 5, 2.0, 25)
    assert c.cost_starts_at_zero and c.early_stop and c.attack_success_threshold == 0.99
    assert c.regularization == "l1" and c.upsample == 1 and c.loss == "reference"
    assert ScanConfig.paper() == c


def test_fast_preset_is_a_shorter_schedule():
    fast = ScanConfig.fast()
    assert fast.steps_per_epoch * fast.max_epochs == 150 and fast.patience == 3
    assert ScanConfig.fast(loss="crossentropy").loss == "crossentropy"


def test_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ScanConfig().batch_size = 4  # type: ignore[misc]  # refused on purpose: frozen, keyword-only
    with pytest.raises(TypeError):
        ScanConfig(32)  # type: ignore[misc]  # refused on purpose: frozen, keyword-only


@pytest.mark.parametrize("changes, match", [
    (dict(batch_size=0), "batch_size"), (dict(nb_sample=8, batch_size=16), "nb_sample"),
    (dict(learning_rate=-1.0), "learning_rate"), (dict(beta_2=1.0), "beta_2"),
    (dict(cost_multiplier=1.0), "cost_multiplier"),
    (dict(attack_success_threshold=1.5), "attack_success_threshold"), (dict(regularization="l3"), "regularization"),
    (dict(loss="mse"), "loss"), (dict(preprocessing="raw"), "Preprocessing"), (dict(label_chunk=0), "label_chunk"),
    (dict(upsample=True), "upsample"), (dict(early_stop_patience=0), "early_stop_patience"),
    (dict(matmul_precision="tf32"), "matmul_precision"),
])
def test_invalid_settings_name_the_field(changes, match):
    with pytest.raises(ncjax.ConfigError, match=match) as info:
        ScanConfig(**changes)
    assert isinstance(info.value, ValueError)


def test_replace_validates_again():
    with pytest.raises(ncjax.ConfigError):
        ScanConfig().replace(patience=0)


@pytest.mark.parametrize("pre", [
    Preprocessing(), Preprocessing(mode="mnist"), Preprocessing(mode="inception"), Preprocessing(mode="imagenet"),
    Preprocessing(mode="torch"), Preprocessing(mode="custom", scale=1 / 255, offset=-0.5, channel_order="bgr"),
    Preprocessing(mode="normalize", mean=(0.4914, 0.4822, 0.4465), std=(0.247, 0.243, 0.261)),
    Preprocessing(mode="mnist", channel_order="bgr"),
])
def test_preprocessing_round_trips(pre):
    raw = np.random.default_rng(0).uniform(0, 255, (2, 3, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(pre.to_raw(pre.to_model(raw)), raw, rtol=1e-5, atol=1e-3)
    assert parse_described(pre.describe()) == pre  # the flags it prints give it back


@pytest.mark.parametrize("text", ["--bgr --bgr mnist", "mnist --bgr --bgr", "--mean 0.5", "mnist --std", "--scale 2",
                                  "mnist raw"])
def test_described_flags_that_give_no_preprocessing_are_refused(text):
    with pytest.raises(ncjax.ConfigError):
        parse_described(text)


def test_preprocessing_modes_match_the_reference():
    raw = np.array([[[[255.0, 0.0, 127.5]]]], np.float32)
    np.testing.assert_allclose(Preprocessing(mode="mnist").to_model(raw), raw / 255)
    np.testing.assert_allclose(Preprocessing(mode="inception").to_model(raw), (raw / 255 - 0.5) * 2, atol=1e-6)
    np.testing.assert_allclose(Preprocessing(mode="imagenet").to_model(raw),
                               [[[[127.5 - 103.939, 0 - 116.779, 255 - 123.68]]]], rtol=1e-6)
    torch_style = (raw / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(Preprocessing(mode="torch").to_model(raw), torch_style, rtol=1e-5, atol=1e-6)
    with pytest.raises(ncjax.ConfigError, match="3 RGB channels"):
        Preprocessing(mode="torch").to_model(np.zeros((1, 2, 2, 1), np.float32))


def test_normalize_is_torchvisions_normalize_on_pixels_over_255_in_either_channel_order():
    raw = np.random.default_rng(0).uniform(0, 255, (2, 3, 3, 3)).astype(np.float32)
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.247, 0.243, 0.261])
    cifar = Preprocessing(mode="normalize", mean=tuple(mean), std=tuple(std))
    np.testing.assert_allclose(cifar.to_model(raw), (raw / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    bgr = Preprocessing(mode="normalize", mean=tuple(mean), std=tuple(std), channel_order="bgr")
    np.testing.assert_allclose(bgr.to_model(raw), (raw[..., ::-1] / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Preprocessing(mode="mnist", channel_order="bgr").to_model(raw), raw[..., ::-1] / 255,
                               rtol=1e-6)
    gray = Preprocessing(mode="normalize", mean=(0.1307,), std=(0.3081,))  # MNIST's, one value for one channel
    np.testing.assert_allclose(gray.to_model(raw[..., :1]), (raw[..., :1] / 255 - 0.1307) / 0.3081, rtol=1e-5)
    with pytest.raises(ncjax.ConfigError, match="2 values per statistic; the images have 3 channels"):
        Preprocessing(mode="normalize", mean=(0.5, 0.5), std=(0.2, 0.2)).to_model(raw)


@pytest.mark.parametrize("settings, match", [
    (dict(mode="normalize"), "as many means as deviations"),
    (dict(mode="normalize", mean=(0.5,), std=(0.0,)), "deviations finite and > 0"),
    (dict(mode="torch", mean=(0.5,), std=(0.2,)), "mean/std are for mode='normalize'"),
    (dict(mode="imagenet", channel_order="bgr"), "BGR channels by definition"),
])
def test_normalize_and_channel_order_validation(settings, match):
    with pytest.raises(ncjax.ConfigError, match=match):
        Preprocessing(**settings)


def test_preprocessing_validation():
    with pytest.raises(ncjax.ConfigError, match="Preprocessing.mode must be one of 'raw', 'mnist'.*got 'tf'"):
        Preprocessing(mode="tf")  # type: ignore[arg-type]  # a wrong type, on purpose
    with pytest.raises(ncjax.ConfigError, match="channel_order must be one of 'rgb', 'bgr'"):
        Preprocessing(mode="custom", channel_order="gbr")  # type: ignore[arg-type]  # a wrong type, on purpose
    with pytest.raises(ncjax.ConfigError, match="mode='custom'"):
        Preprocessing(mode="raw", scale=2.0)
    with pytest.raises(ncjax.ConfigError, match="non-zero"):
        Preprocessing(mode="custom", scale=0.0)


@pytest.mark.parametrize("field, bad, choices", [
    ("regularization", "l3", "'l1', 'l2'"), ("loss", "mse", "'reference', 'crossentropy'"),
    ("matmul_precision", "tf32", "'default', 'high', 'highest'"),
])
def test_unknown_choice_lists_the_choices(field, bad, choices):
    with pytest.raises(ncjax.ConfigError, match=f"ScanConfig.{field} must be one of {choices}; got '{bad}'"):
        ScanConfig(**{field: bad})


def test_booleans_and_numbers_are_not_confused():
    with pytest.raises(ncjax.ConfigError, match="early_stop must be True or False"):
        ScanConfig(early_stop=1)  # type: ignore[arg-type]  # a wrong type, on purpose
    with pytest.raises(ncjax.ConfigError, match="precompile_widths must be True or False"):
        ScanConfig(precompile_widths=1)  # type: ignore[arg-type]  # a wrong type, on purpose
    assert ScanConfig(precompile_widths=None).precompile_widths is None  # None: the backend decides
    with pytest.raises(ncjax.ConfigError, match="beta_1"):
        ScanConfig(beta_1=True)  # type: ignore[arg-type]  # a wrong type, on purpose


def test_every_setting_has_help_text():
    for f in dataclasses.fields(ScanConfig):
        assert len(f.metadata.get("help", "")) > 10, f.name
