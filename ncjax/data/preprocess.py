"""How a model's inputs relate to raw pixels: triggers are blended in the raw [0, 255] RGB domain.

The reference's modes: `raw` (identity; GTSRB), `mnist` (x / 255), `inception` ((x / 255 - 0.5) * 2) and
`imagenet` (RGB->BGR, then minus the channel means [103.939, 116.779, 123.68]). `torch` is torchvision's
ImageNet normalization, (x / 255 - mean) / std per RGB channel, for PyTorch models read from ONNX files.
`custom` is model_input = raw * scale + offset, in RGB or BGR channel order, for other pipelines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from ncjax.core.choices import check_literal_fields, match_choice
from ncjax.errors import ConfigError

PreprocessingMode = Literal["raw", "mnist", "inception", "imagenet", "torch", "custom"]
IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class Preprocessing:
    """model_input = per-channel (raw * scale + offset), channels reordered to the model's order."""

    mode: PreprocessingMode = "raw"
    scale: float = 1.0  # custom mode only
    offset: float = 0.0  # custom mode only
    channel_order: Literal["rgb", "bgr"] = "rgb"  # custom mode only: the order the model expects

    def __post_init__(self) -> None:
        check_literal_fields(self)
        if self.mode != "custom" and (self.scale != 1.0 or self.offset != 0.0 or self.channel_order != "rgb"):
            raise ConfigError(
                f"scale/offset/channel_order are for mode='custom'; mode={self.mode!r} fixes them. "
                "Use Preprocessing(mode='custom', scale=..., offset=..., channel_order=...)."
            )
        if not self.scale or self.scale != self.scale:
            raise ConfigError(f"preprocessing scale must be a non-zero number, got {self.scale!r}.")

    def _affine(self, channels: int) -> tuple[jax.Array, jax.Array, bool]:
        """(scale, offset, bgr) of model_input = reorder(raw) * scale + offset, per channel."""
        return _AFFINE[self.mode](self, channels)

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


def _torch(p: Preprocessing, channels: int) -> tuple[jax.Array, jax.Array, bool]:
    if channels != 3:
        raise ConfigError(f"preprocessing mode 'torch' normalizes 3 RGB channels; the images have {channels}.")
    std = jnp.asarray(TORCH_STD)
    return 1 / (255 * std), -jnp.asarray(TORCH_MEAN) / std, False


# One entry per PreprocessingMode; the modes are checked when a Preprocessing is built.
_AFFINE = {
    "raw": lambda p, c: (jnp.ones(c), jnp.zeros(c), False),
    "mnist": lambda p, c: (jnp.full(c, 1 / 255), jnp.zeros(c), False),
    "inception": lambda p, c: (jnp.full(c, 2 / 255), jnp.full(c, -1.0), False),
    "imagenet": lambda p, c: (jnp.ones(c), -jnp.asarray(IMAGENET_BGR_MEANS[:c]), c == 3),
    "torch": _torch,
    "custom": lambda p, c: (jnp.full(c, p.scale), jnp.full(c, p.offset), p.channel_order == "bgr"),
}


NAMED_MODES: tuple[PreprocessingMode, ...] = ("raw", "mnist", "inception", "imagenet", "torch")


def parse_preprocessing(text: str, *, bgr: bool = False) -> Preprocessing:
    """A Preprocessing from its short form: a mode name, or OFFSET,SCALE (channels BGR with `bgr`)."""
    mode = match_choice(text, NAMED_MODES)
    if mode is not None:
        if bgr:
            raise ConfigError(f"BGR channels go with OFFSET,SCALE; '{text}' fixes the channel order.")
        return Preprocessing(mode=mode)
    try:
        offset, scale = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"preprocessing must be {', '.join(NAMED_MODES)} or OFFSET,SCALE; got {text!r}.") from None
    return Preprocessing(mode="custom", offset=offset, scale=scale, channel_order="bgr" if bgr else "rgb")
