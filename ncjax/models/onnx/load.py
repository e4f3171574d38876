"""`load_onnx`: an ONNX classifier (PyTorch's torch.onnx.export, tf2onnx, ...) becomes a `Classifier`."""
from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import MissingDependencyError, ModelFileError, ModelNotFoundError, NCJaxError, UnsupportedModelError
from ncjax.models.classifier import LAYOUTS, Classifier, LayerSummary, Layout, param_count
from ncjax.models.onnx.contained import check_contained
from ncjax.models.onnx.graph import OnnxGraph, parse
from ncjax.models.onnx.roles import OnnxRoles
from ncjax.models.safe_files import check_regular_file, file_formats, read_regular_file

_CHANNELS = (1, 3, 4)
MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit for one message


def load_onnx(path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
              layout: Layout | None = None) -> Classifier:
    """Load an ONNX image classifier; its `apply` takes NHWC images whatever the file's layout.

    Args:
      path: an `.onnx` file with one image input (N, C, H, W) or (N, H, W, C) and one output (N, classes).
      input_shape: (H, W, C), for files that leave the image size symbolic.
      layout: "NCHW" (PyTorch) or "NHWC" (TensorFlow); inferred from the input's channel axis when not given.
    """
    where = quoted(os.fspath(path), limit=200)
    if not os.path.exists(path):
        raise ModelNotFoundError(f"model file not found: {where}")
    model = read_proto(path)
    graph = parse(model, where)
    layout = _layout(graph.input_dims, layout, where)
    shape = _image_shape(graph.input_dims, layout, input_shape, where)
    batch = graph.input_dims[0]

    def run_batch(params, x, record=None, until=None):
        return graph.run(params, x.transpose(0, 3, 1, 2) if layout == "NCHW" else x, record=record, until=until)

    def layer_output(params, x, node: str):
        if batch == 1:
            return jax.vmap(lambda image: run_batch(params, image[None], until=node)[0])(x)
        return run_batch(params, x, until=node)

    if batch == 1:  # exported with a fixed batch of one: run each image alone, vmapped
        def apply(params, x):
            return jax.vmap(lambda image: run_batch(params, image[None])[0])(x)
    elif isinstance(batch, int) and batch > 1:
        raise UnsupportedModelError(f"{where} fixes its batch size at {batch}; export it with a dynamic batch "
                                    "axis (torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}})) or batch 1.")
    else:
        apply = run_batch
    params = {k: jnp.asarray(v) for k, v in graph.params.items()}
    try:
        out = jax.eval_shape(apply, params, jax.ShapeDtypeStruct((2, *shape), jnp.float32))
    except NCJaxError:
        raise
    except Exception as e:  # JAX's message can quote values from the file: only its type is shown
        raise UnsupportedModelError(f"{where} does not run on images of shape {shape} ({type(e).__name__}).") from None
    if len(out.shape) != 2 or out.shape[0] != 2:
        raise UnsupportedModelError(f"{where}: the output has shape {out.shape} for 2 images; a classifier's is "
                                    "(batch, classes).")
    return Classifier(apply=apply, params=params, input_shape=shape, num_classes=int(out.shape[1]),
                      output_activation=graph.output_activation, layers=_summary(graph, run_batch, params, shape),
                      source=os.fspath(path), format="onnx", input_layout=layout, layer_output=layer_output,
                      graph=graph, roles=OnnxRoles(graph))


def read_proto(path: str | os.PathLike):
    """The onnx.ModelProto of a regular protobuf file, refused if any tensor in it keeps its data in another
    file: what every reader of .onnx files in ncjax goes through."""
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("reading .onnx files needs the onnx package: pip install 'onnx>=1.14'.") from None
    path = os.fspath(path)
    where = quoted(path, limit=200)
    check_regular_file(path)
    formats = file_formats(path)
    if formats:
        raise ModelFileError(f"{where} is named .onnx but is a {' and '.join(sorted(formats))} file; an ONNX model "
                             "is a protobuf file.")
    data = read_regular_file(path, max_bytes=MAX_ONNX_BYTES)
    try:  # parsing reads these bytes only; onnx.load could follow a tensor's external data to other files
        model = onnx.ModelProto.FromString(data)
    except Exception as e:  # protobuf's DecodeError and friends: the file is not an ONNX model
        raise ModelFileError(f"{where} could not be read as an ONNX model ({type(e).__name__}).") from None
    check_contained(model, where)
    return model


def _layout(dims, given: Layout | None, where: str) -> Layout:
    if len(dims) != 4:
        raise UnsupportedModelError(f"{where}: the input has {len(dims)} dimensions {dims_text(dims)}; ncjax scans "
                                    "image classifiers with 4-D inputs (N, C, H, W) or (N, H, W, C).")
    if given is not None:
        if given not in LAYOUTS:
            raise UnsupportedModelError(f"layout must be 'NCHW' or 'NHWC', got {quoted(given)}.")
        return given
    first, last = dims[1] in _CHANNELS, dims[3] in _CHANNELS
    if first != last:
        return "NCHW" if first else "NHWC"
    raise UnsupportedModelError(f"{where}: cannot tell the channel axis of the input {dims_text(dims)}; pass "
                                "layout='NCHW' or layout='NHWC' (--layout on the command line).")


def dims_text(dims) -> str:
    """Declared dimensions as text; symbolic ones are names from the file, shown quoted and cut."""
    return "(" + ", ".join(str(d) if d is None or isinstance(d, int) else quoted(d, limit=20) for d in dims) + ")"


def _image_shape(dims, layout: Layout, given: Sequence[int] | None, where: str) -> tuple[int, int, int]:
    named = (dims[2], dims[3], dims[1]) if layout == "NCHW" else (dims[1], dims[2], dims[3])
    if any(isinstance(v, int) and v <= 0 for v in named):
        raise ModelFileError(f"{where}: the input declares {dims_text(dims)}; a dimension of 0 is not a size an image "
                             "can have.")
    h, w, c = (v if isinstance(v, int) and v > 0 else None for v in named)
    declared = (h, w, c)
    if given is not None:
        shape = tuple(int(v) for v in given)
        if len(shape) != 3 or any(d is not None and d != g for d, g in zip(declared, shape)):
            raise UnsupportedModelError(f"input_shape {shape} does not fit {where}'s input (H, W, C) = {declared}.")
        return shape[0], shape[1], shape[2]
    if h is None or w is None or c is None:
        raise UnsupportedModelError(f"{where} leaves its image size open (H, W, C) = {declared}; pass "
                                    "input_shape=(H, W, C).")
    return h, w, c


def _summary(graph: OnnxGraph, run_batch, params, shape) -> tuple[LayerSummary, ...]:
    """One row per node: its operator, output shape (for one image) and weight count."""
    rows = []

    def record(node, outputs):
        weights = param_count([graph.params[name] for name in node.inputs if name in graph.params])
        rows.append(LayerSummary(node.name, node.op_type, tuple(np.shape(outputs[0])) if outputs else (), weights, 0))

    jax.eval_shape(lambda p, x: run_batch(p, x, record), params, jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    return tuple(rows)
