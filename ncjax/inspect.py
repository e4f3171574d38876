"""`python -m ncjax.inspect model.h5|model.onnx`: print a model's layers, input shape, parameter count, output
activation and what scanning it would cost here."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from ncjax.cli.options import OneLineParser, error_line
from ncjax.core.printable import printable
from ncjax.errors import NCJaxError
from ncjax.models.classifier import LAYOUTS
from ncjax.models.loading import load_model, parse_input_shape
from ncjax.scan.work import DEFAULT_MAX_HOURS, estimate_work
from ncjax.search.config import ScanConfig, device_preset


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m ncjax.inspect", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("model", help="Keras model file (.h5 or .keras), weights-only .h5 with --architecture, "
                                      "or ONNX file (.onnx)")
    parser.add_argument("--architecture", help="architecture JSON (model.to_json()) for a weights-only file")
    parser.add_argument("--input-shape", help="H,W,C for models that leave their input size open")
    parser.add_argument("--layout", choices=LAYOUTS, help="an ONNX input's layout, where it is ambiguous")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model, architecture=args.architecture,
                           input_shape=parse_input_shape(args.input_shape), layout=args.layout)
    except NCJaxError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    version = printable(model.keras_version or "unknown", limit=40)
    origin = f"Keras {version}" if model.format != "onnx" else f"input layout {model.input_layout}"
    print(f"model: {printable(model.source, limit=200)} ({model.format}, {origin})")
    print(model.summary())
    preset = device_preset()
    config = getattr(ScanConfig, preset)()
    work = estimate_work(model, config=config, searches=model.num_classes * config.restarts)
    print(f"scan {work.line()} (the {preset} preset, every label)")
    problem = work.problem(DEFAULT_MAX_HOURS)
    if problem:
        print(f"note: python -m ncjax.run would refuse this scan: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
