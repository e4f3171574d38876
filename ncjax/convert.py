"""`python -m ncjax.convert SOURCE model.onnx`: a TensorFlow SavedModel or Keras file to ONNX, with tf2onnx.

For models ncjax cannot read natively (layers it does not implement, SavedModels); the ONNX file is then
scanned like any other (`python -m ncjax.run --model model.onnx`). Needs TensorFlow and tf2onnx
(`pip install 'onnx>=1.14' 'tf2onnx>=1.16' tensorflow`). Unlike ncjax's own readers, conversion LOADS the model with
TensorFlow, and a Keras file's Lambda layers or a SavedModel's functions are code: convert only files you
trust. After writing the file it reads it back with ncjax and reports how far its logits are from
TensorFlow's on random images.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncjax.cli.options import OneLineParser, error_line
from ncjax.errors import MissingDependencyError, ModelFileError, ModelNotFoundError, NCJaxError


@dataclass(frozen=True)
class Conversion:
    output: Path
    source_kind: str  # "saved_model" or "keras"
    opset: int
    input_shape: tuple[int, int, int]
    num_classes: int
    max_relative_difference: float | None  # ncjax's logits vs TensorFlow's on random images (None: not compared)


def _tensorflow():
    try:
        import tensorflow as tf
        import tf2onnx  # noqa: F401  (only to say early that the convert extra is missing)
    except ImportError as e:
        raise MissingDependencyError(
            f"converting to ONNX needs TensorFlow and tf2onnx ({e.name} is missing): "
            "pip install 'onnx>=1.14' 'tf2onnx>=1.16' tensorflow") from None
    return tf


def convert_to_onnx(source: str | os.PathLike, output: str | os.PathLike, *, opset: int = 17,
                    check_images: int = 8) -> Conversion:
    """Convert a SavedModel folder or a Keras .h5/.keras file to ONNX and check ncjax reads it the same."""
    source, output = Path(source), Path(output)
    if not source.exists():
        raise ModelNotFoundError(f"nothing to convert at {os.fspath(source)!r}")
    if output.suffix.lower() != ".onnx":
        raise ModelFileError(f"the output {os.fspath(output)!r} should end in .onnx, so ncjax reads it as ONNX.")
    tf = _tensorflow()
    if source.is_dir():
        if not (source / "saved_model.pb").exists():
            raise ModelFileError(f"{os.fspath(source)!r} is a folder without saved_model.pb: not a SavedModel.")
        kind, reference = "saved_model", _saved_model_function(tf, source)
        _run_tf2onnx(["--saved-model", os.fspath(source)], output, opset)
    elif source.suffix.lower() in (".h5", ".keras"):
        kind, tf_model = "keras", _load_keras(tf, source)
        reference = lambda x: np.asarray(tf_model(x, training=False))
        with tempfile.TemporaryDirectory() as folder:  # through a SavedModel: tf2onnx's most exercised path
            tf_model.export(folder) if hasattr(tf_model, "export") else tf.saved_model.save(tf_model, folder)
            _run_tf2onnx(["--saved-model", folder], output, opset)
    else:
        raise ModelFileError(f"{os.fspath(source)!r} is neither a SavedModel folder nor a Keras .h5/.keras file.")

    from ncjax.models.loading import load_model

    model = load_model(output)
    difference = None
    if check_images and reference is not None:
        x = np.random.default_rng(0).uniform(0, 255, (check_images, *model.input_shape)).astype(np.float32)
        expected = np.asarray(reference(x), np.float64)
        got = np.asarray(model(x), np.float64)
        if model.output_activation == "softmax":  # compare like with like: TensorFlow's output has the softmax
            got = np.exp(got - got.max(1, keepdims=True))
            got /= got.sum(1, keepdims=True)
        difference = float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-12))
    return Conversion(output, kind, opset, model.input_shape, model.num_classes, difference)


def _load_keras(tf, path: Path):
    keras = tf.keras
    try:
        return keras.models.load_model(os.fspath(path), compile=False)
    except Exception as e:  # anything Keras raises: the file is not a model it can load
        raise ModelFileError(f"TensorFlow could not load {os.fspath(path)!r} ({type(e).__name__}: {e}).") from None


def _saved_model_function(tf, folder: Path):
    loaded = tf.saved_model.load(os.fspath(folder))
    function = getattr(loaded, "signatures", {}).get("serving_default")
    if function is None:
        return None

    def run(x):
        (name, spec), = function.structured_input_signature[1].items()
        outputs = function(**{name: tf.constant(x, spec.dtype)})
        return next(iter(outputs.values())).numpy()

    return run


def _run_tf2onnx(source_args: list[str], output: Path, opset: int) -> None:
    command = [sys.executable, "-m", "tf2onnx.convert", *source_args, "--output", os.fspath(output),
               "--opset", str(opset)]
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0 or not output.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ModelFileError(f"tf2onnx could not convert the model (exit {proc.returncode}):\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m ncjax.convert",
                                     description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("source", help="a TensorFlow SavedModel folder or a Keras .h5/.keras file")
    parser.add_argument("output", help="the ONNX file to write (.onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    args = parser.parse_args(argv)
    try:
        result = convert_to_onnx(args.source, args.output, opset=args.opset)
    except NCJaxError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    print(f"wrote {result.output} (opset {result.opset}) from a {result.source_kind}; ncjax reads it: input "
          f"{result.input_shape}, {result.num_classes} classes")
    if result.max_relative_difference is not None:
        print(f"ncjax vs TensorFlow on 8 random images: max relative difference {result.max_relative_difference:.1e}")
    print(f"scan it: python -m ncjax.run --model {result.output} --data CLEAN_IMAGES")
    return 0


if __name__ == "__main__":
    sys.exit(main())
