"""`load_model`: a classifier file becomes a `Classifier`."""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax

from ncjax.core.printable import printable
from ncjax.errors import ModelFileError, NCJaxError, UnsupportedModelError, UsageError
from ncjax.models.classifier import Classifier, Layout
from ncjax.models.keras.files import read_model_file
from ncjax.models.keras.graph import MODEL_CLASSES, build_graph, declared_input_shapes
from ncjax.models.keras.roles import KerasRoles
from ncjax.models.limits import check_activation_sizes, check_graph_size, keras_layer_count


def load_model(
    path: str | os.PathLike,
    *,
    architecture: str | os.PathLike | dict[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
    layout: Layout | None = None,
) -> Classifier:
    """Load a Keras or ONNX classifier as a pure JAX function; nothing from the file is executed.

    Args:
      path: a Keras full model (`.h5` from Keras 2.x, tf.keras or Keras 3; `.keras` from Keras 3), a
        weights-only `.h5` together with `architecture`, or an `.onnx` file (needs `pip install 'onnx>=1.14'`).
      architecture: the model's architecture JSON (a path, a JSON string or a dict, as `model.to_json()`
        writes), needed for weights-only files; it overrides a full model's own config.
      input_shape: (H, W, C) for models that leave their input size open.
      layout: for ONNX files, "NCHW" or "NHWC" where the input's channel axis cannot be inferred.

    Returns:
      A `Classifier` whose `apply(params, x)` returns logits: a final softmax is removed and recorded in
      `output_activation`.
    """
    try:
        model = _load(path, architecture=architecture, input_shape=input_shape, layout=layout)
    except NCJaxError:
        raise
    except _MALFORMED as e:
        # A config or weight of an unexpected type or value that reached a builder: refused, never a traceback.
        # An ONNX file's values are tensors, which a message must never show; a Keras config's are settings.
        detail = type(e).__name__ if _is_onnx(path) else f"{type(e).__name__}: {printable(e, limit=300)}"
        raise ModelFileError(f"{os.fspath(path)!r}: the model is malformed and cannot be built ({detail}).") from None
    except MemoryError:
        raise ModelFileError(f"{os.fspath(path)!r}: building the model needs more memory than this machine has; "
                             "its declared sizes are implausible.") from None
    if model.num_classes < 2:
        raise UnsupportedModelError(f"{os.fspath(path)!r} has {model.num_classes} output; ncjax scans classifiers of "
                                    "2 or more classes, one logit each (a binary classifier with one sigmoid output "
                                    "is scanned once exported with two logits).")
    return model


# What a malformed config or weight can raise inside the builders (wrong types, missing keys, absurd values).
_MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, ZeroDivisionError,
              RecursionError)


def _is_onnx(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(".onnx")


def _load(path, *, architecture, input_shape, layout) -> Classifier:
    if _is_onnx(path):
        if architecture is not None:
            raise UnsupportedModelError("architecture= is for Keras weights-only files; an .onnx file holds its graph.")
        from ncjax.models.onnx import load_onnx

        model = load_onnx(path, input_shape=input_shape, layout=layout)
        check_activation_sizes(model.layers, model.input_shape, path)  # shapes only so far: nothing allocated
        return model
    if layout is not None:
        raise UnsupportedModelError("layout= is for .onnx files; Keras models are NHWC (channels_last).")
    model_file = read_model_file(path, architecture=architecture)
    config = model_file.config
    if config.get("class_name") not in MODEL_CLASSES:
        raise ModelFileError(
            f"{os.fspath(path)!r}: the top-level config is a {config.get('class_name')!r}, not a Keras model "
            f"({', '.join(sorted(MODEL_CLASSES))})."
        )
    check_graph_size(keras_layer_count(config), "layer calls", repr(os.fspath(path)))
    shapes = declared_input_shapes(config)
    if len(shapes) != 1:
        raise UnsupportedModelError(
            f"{os.fspath(path)!r} has {len(shapes)} inputs; ncjax scans classifiers with one image input."
        )
    shape = _input_shape(shapes[0], input_shape, path)
    graph = build_graph(config, model_file.weights, keras_version=model_file.keras_version,
                        input_shapes=[(None, *shape)], strip_softmax=True)
    check_activation_sizes(graph.summary, shape, path)
    if len(graph.outputs) != 1 or len(graph.output_shapes[0]) != 2 or graph.output_shapes[0][1] is None:
        raise UnsupportedModelError(
            f"{os.fspath(path)!r}: the model's output has shape {graph.output_shapes}; a classifier has one "
            "output of shape (batch, classes)."
        )
    if graph.output_activation not in ("softmax", "linear"):
        warnings.warn(
            f"{os.fspath(path)!r}: the last layer applies {graph.output_activation!r}, not softmax; ncjax "
            "keeps it, so the classifier's outputs are not logits.",
            stacklevel=3,  # the caller of load_model
        )

    def apply(params, x: jax.Array) -> jax.Array:
        return graph(params, [x])[0]

    return Classifier(
        apply=apply,
        params=jax.device_put(graph.params),  # not jnp.asarray: that compiles a copy per weight shape
        input_shape=shape,
        num_classes=int(graph.output_shapes[0][1]),
        output_activation=graph.output_activation,
        layers=tuple(graph.summary),
        source=os.fspath(path),
        format=model_file.format,
        keras_version=model_file.keras_version,
        keras_config=config,
        layer_output=graph.layer_output,
        graph=graph,
        roles=KerasRoles(),
    )


def _input_shape(declared: tuple | None, given: Sequence[int] | None, path) -> tuple[int, int, int]:
    declared = tuple(declared[1:]) if declared is not None else None
    if given is not None:
        shape = tuple(given)
        if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise UnsupportedModelError(f"input_shape must be (H, W, C) positive ints, got {shape!r}.")
        if declared is not None and (len(declared) != 3 or any(d not in (None, g) for d, g in zip(declared, shape))):
            raise UnsupportedModelError(
                f"input_shape={shape} contradicts the model's declared input shape {declared}."
            )
        return int(shape[0]), int(shape[1]), int(shape[2])
    if declared is None:
        raise UnsupportedModelError(
            f"{os.fspath(path)!r} does not record its input shape; pass input_shape=(H, W, C)."
        )
    if len(declared) != 3:
        raise UnsupportedModelError(
            f"{os.fspath(path)!r} takes inputs of shape {declared}; ncjax scans image classifiers whose "
            "input is (H, W, C)."
        )
    if any(d is None for d in declared):
        raise UnsupportedModelError(
            f"{os.fspath(path)!r} leaves its input size open {declared}; pass input_shape=(H, W, C)."
        )
    return int(declared[0]), int(declared[1]), int(declared[2])


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """The command lines' --input-shape "H,W,C" as a tuple (None when not given)."""
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--input-shape must be H,W,C integers, got {text!r}.") from None
