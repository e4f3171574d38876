"""How a model's inputs relate to raw pixels: triggers are blended in the raw [0, 255] RGB domain.

The reference's modes: `raw` (identity; GTSRB), `mnist` (x / 255), `inception` ((x / 255 - 0.5) * 2) and
`imagenet` (RGB->BGR, then minus the channel means [103.939, 116.779, 123.68]). `torch` is torchvision's
ImageNet normalization, (x / 255 - mean) / std per RGB channel; `normalize` is the same with other means and
deviations (torchvision's Normalize on 0..1 pixels, e.g. CIFAR-10's). `custom` is model_input = raw * scale +
offset. Every mode but `imagenet` (BGR by definition) takes the channels in RGB or BGR order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from ncjax.core.choices import check_literal_fields, match_choice
from ncjax.errors import ConfigError

PreprocessingMode = Literal["raw", "mnist", "inception", "imagenet", "torch", "normalize", "custom"]
ChannelOrder = Literal["rgb", "bgr"]
IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class Preprocessing:
    """model_input = per-channel (raw * scale + offset), channels in the model's order."""

    mode: PreprocessingMode = "raw"
    scale: float = 1.0  # custom mode only
    offset: float = 0.0  # custom mode only
    mean: tuple[float, ...] = ()  # normalize mode only: per channel (or one for all), on pixels / 255
    std: tuple[float, ...] = ()  # normalize mode only
    channel_order: ChannelOrder = "rgb"  # the order the model expects; imagenet is always BGR

    def __post_init__(self) -> None:
        # Lists (as read back from JSON) become tuples, so settings stay hashable and compare equal.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        check_literal_fields(self)
        if self.mode != "custom" and (self.scale != 1.0 or self.offset != 0.0):
            raise ConfigError(f"scale/offset are for mode='custom'; mode={self.mode!r} fixes them. Use "
                              "Preprocessing(mode='custom', scale=..., offset=...).")
        if self.mode != "normalize" and (self.mean or self.std):
            raise ConfigError(f"mean/std are for mode='normalize'; mode={self.mode!r} fixes them. Use "
                              "Preprocessing(mode='normalize', mean=(...), std=(...)).")
        if self.mode == "imagenet" and self.channel_order != "rgb":
            raise ConfigError("mode='imagenet' takes BGR channels by definition; leave channel_order out.")
        if not self.scale or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ConfigError(f"preprocessing scale must be a finite non-zero number and offset finite, got scale "
                              f"{self.scale!r}, offset {self.offset!r}.")
        if self.mode == "normalize":
            _check_mean_std(self.mean, self.std)

    def _affine(self, channels: int) -> tuple[jax.Array, jax.Array, bool]:
        """(scale, offset, bgr) of model_input = reorder(raw) * scale + offset, per channel."""
        scale, offset, bgr = _AFFINE[self.mode](self, channels)
        return scale, offset, bgr or self.channel_order == "bgr"

    def to_model(self, raw: jax.Array) -> jax.Array:
        """Raw RGB pixels in [0, 255] -> the model's input."""
        scale, offset, bgr = self._affine(raw.shape[-1])
        x = raw[..., ::-1] if bgr else raw
        return x * scale + offset

    def to_raw(self, x: jax.Array) -> jax.Array:
        """The model's input -> raw RGB pixels in [0, 255]."""
        scale, offset, bgr = self._affine(x.shape[-1])
        raw = (x - offset) / scale
        return raw[..., ::-1] if bgr else raw

    def describe(self) -> str:
        """The command-line flags that give this preprocessing."""
        listed = lambda values: ",".join(map(repr, values))  # the shortest text that reads back the same float
        text = {"custom": f"--preprocess {self.offset!r},{self.scale!r}",
                "normalize": f"--mean {listed(self.mean)} --std {listed(self.std)}"}.get(self.mode,
                                                                                        f"--preprocess {self.mode}")
        return text + (" --bgr" if self.channel_order == "bgr" else "")


def _check_mean_std(mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    if not mean or len(mean) != len(std):
        raise ConfigError(f"mode='normalize' needs as many means as deviations (one, or one per channel); got "
                          f"{len(mean)} means and {len(std)} deviations.")
    if not all(math.isfinite(v) for v in mean) or not all(math.isfinite(v) and v > 0 for v in std):
        raise ConfigError(f"normalize: the means must be finite and the deviations finite and > 0; got mean {mean}, "
                          f"std {std}.")


def _per_channel(values: tuple[float, ...], channels: int, mode: str) -> jax.Array:
    if len(values) not in (1, channels):
        raise ConfigError(f"preprocessing mode {mode!r} has {len(values)} values per statistic; the images have "
                          f"{channels} channels (give one value, or one per channel).")
    return jnp.broadcast_to(jnp.asarray(values, jnp.float32), (channels,))


def _normalize(mean: tuple[float, ...], std: tuple[float, ...], channels: int, mode: str):
    mean_c, std_c = _per_channel(mean, channels, mode), _per_channel(std, channels, mode)
    return 1 / (255 * std_c), -mean_c / std_c, False


def _torch(p: Preprocessing, channels: int) -> tuple[jax.Array, jax.Array, bool]:
    if channels != 3:
        raise ConfigError(f"preprocessing mode 'torch' normalizes 3 RGB channels; the images have {channels}. Give "
                          "the model's own statistics with --mean and --std.")
    return _normalize(TORCH_MEAN, TORCH_STD, channels, "torch")


# One entry per PreprocessingMode; the modes are checked when a Preprocessing is built.
_AFFINE = {
    "raw": lambda p, c: (jnp.ones(c), jnp.zeros(c), False),
    "mnist": lambda p, c: (jnp.full(c, 1 / 255), jnp.zeros(c), False),
    "inception": lambda p, c: (jnp.full(c, 2 / 255), jnp.full(c, -1.0), False),
    "imagenet": lambda p, c: (jnp.ones(c), -jnp.asarray(IMAGENET_BGR_MEANS[:c]), c == 3),
    "torch": _torch,
    "normalize": lambda p, c: _normalize(p.mean, p.std, c, "normalize"),
    "custom": lambda p, c: (jnp.full(c, p.scale), jnp.full(c, p.offset), False),
}


NAMED_MODES: tuple[PreprocessingMode, ...] = ("raw", "mnist", "inception", "imagenet", "torch")


def parse_preprocessing(text: str | None = None, *, bgr: bool = False, mean: str | None = None,
                        std: str | None = None) -> Preprocessing:
    """A Preprocessing from its short form: a mode name or OFFSET,SCALE (default raw), or per-channel MEAN and STD
    lists (torchvision's Normalize on pixels / 255); `bgr`: the model takes BGR channels."""
    order: ChannelOrder = "bgr" if bgr else "rgb"
    if mean is not None or std is not None:
        if text is not None or mean is None or std is None:
            raise ConfigError("mean and std go together, and without a preprocessing mode (they set torchvision's "
                              "Normalize on pixels / 255).")
        return Preprocessing(mode="normalize", mean=_numbers(mean, "mean"), std=_numbers(std, "std"),
                             channel_order=order)
    text = "raw" if text is None else text
    mode = match_choice(text, NAMED_MODES)
    if mode == "imagenet" and bgr:
        raise ConfigError("'imagenet' takes BGR channels by definition; leave out the BGR setting.")
    if mode is not None:
        return Preprocessing(mode=mode, channel_order=order)
    try:
        offset, scale = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"preprocessing must be {', '.join(NAMED_MODES)} or OFFSET,SCALE (model input = pixel "
                          f"* SCALE + OFFSET); got {text!r}.") from None
    return Preprocessing(mode="custom", offset=offset, scale=scale, channel_order=order)


def _numbers(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, e.g. 0.4914,0.4822,0.4465; got {text!r}.") from None


def parse_described(text: str) -> Preprocessing:
    """A Preprocessing from its command-line flags as `Preprocessing.describe()` writes them ("--preprocess mnist
    --bgr", "--mean 0.49,0.48,0.45 --std 0.25,0.24,0.26"), or from the short form alone ("mnist", "-1,0.0078")."""
    tokens = text.split()
    given: dict[str, str | None] = {"--preprocess": None, "--mean": None, "--std": None}
    bgr = False
    if tokens and not tokens[0].startswith("--"):
        given["--preprocess"] = tokens.pop(0)
    while tokens:
        flag = tokens.pop(0)
        if flag == "--bgr" and not bgr:
            bgr = True
        elif flag in given and tokens and given[flag] is None:
            given[flag] = tokens.pop(0)
        else:
            raise ConfigError(f"preprocessing {text!r}: expected a mode or OFFSET,SCALE, or the flags --preprocess "
                              "MODE, --mean M --std S and --bgr, each once; e.g. 'mnist --bgr' or '--mean 0.49,0.48,"
                              "0.45 --std 0.25,0.24,0.26'.")
    return parse_preprocessing(given["--preprocess"], bgr=bgr, mean=given["--mean"], std=given["--std"])
