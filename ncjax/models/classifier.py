"""The Classifier: a model as a pure JAX function of (params, images) -> logits, with what is known of it."""
from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.core.printable import printable

Params = Any  # a pytree of arrays: {layer name: {weight name: array}}, nested models nested
Layout = Literal["NHWC", "NCHW"]  # where an image's channel axis is: last (Keras, TensorFlow) or first (PyTorch)
LAYOUTS: tuple[Layout, ...] = typing.get_args(Layout)


def param_count(params: Params) -> int:
    """The number of weights in a pytree of arrays."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


@dataclass(frozen=True)
class LayerSummary:
    """One row of a model's layer table."""

    path: str  # "inner_seq/conv2d_11" for layers of nested models
    class_name: str
    output_shape: tuple  # batch dimension first, None where unknown
    param_count: int
    depth: int  # 0 for top-level layers

    @property
    def values_per_image(self) -> float:
        """Values the layer outputs for one image (the batch axis and unknown sizes left out)."""
        return float(np.prod([d for d in self.output_shape[1:] if d], dtype=np.float64))


@dataclass(frozen=True, eq=False)
class Classifier:
    """An image classifier ncjax can scan.

    `apply(params, x)` takes images `x` of shape (N, H, W, C), float32, in the model's own input scale, and
    returns logits (N, num_classes). It is pure, so it jits, vmaps and differentiates. The trigger always lives
    in image space (H, W, C): for a file whose input is NCHW (`input_layout`), `apply` transposes.
    """

    apply: Callable[[Params, jax.Array], jax.Array]
    params: Params
    input_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int
    output_activation: str  # what the file's last layer applied: "softmax" (removed by ncjax), "linear", ...
    layers: tuple[LayerSummary, ...] = ()
    source: str | None = None  # the file it was loaded from
    format: str | None = None  # "keras-h5", "keras-zip", "keras-weights", "onnx"
    keras_version: str | None = None
    keras_config: dict[str, Any] | None = None  # the Keras architecture, for save_keras_h5
    input_layout: Layout = "NHWC"  # the file's own image layout ("NCHW" for PyTorch); apply takes NHWC either way
    # `layer_output(params, x, layer)`: what the layer (a LayerSummary path) outputs for images x, in the
    # file's own layout (ONNX feature maps are NCHW). Pruning and input filters read hidden neurons with it.
    layer_output: Callable[[Params, jax.Array, str], jax.Array] | None = None
    graph: Any = None  # the parsed file (a Keras Graph or an OnnxGraph)
    # The importer's answers about the weights (ncjax.models.layer_roles.WeightRoles): which train, which make a hidden
    # layer's units, how the model is written back. None for a classifier built by hand.
    roles: Any = None

    def __call__(self, x: jax.Array | np.ndarray) -> jax.Array:
        """Logits for the images `x` (N, H, W, C)."""
        return self.apply(self.params, jnp.asarray(x))

    @property
    def param_count(self) -> int:
        return param_count(self.params)

    def summary(self) -> str:
        """A layer table as text, like Keras' model.summary()."""
        # Layer and class names come from the file: shown escaped and cut, one row per layer whatever they hold.
        rows = [(("  " * layer.depth) + printable(layer.path), printable(layer.class_name, limit=40),
                 str(layer.output_shape), f"{layer.param_count:,}") for layer in self.layers]
        header = ("layer", "class", "output shape", "params")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(line(header))
        removed = " (removed: apply returns logits)" if self.output_activation == "softmax" else ""
        return "\n".join([
            line(header), rule, *map(line, rows), rule,
            f"input shape: {self.input_shape} (H, W, C; the file's layout: {self.input_layout})",
            f"classes: {self.num_classes}",
            f"parameters: {self.param_count:,}",
            f"output activation: {self.output_activation}{removed}",
        ])
