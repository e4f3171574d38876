"""The sizes a model file may declare: beyond them no scan could run, so the file is refused before anything is
allocated or compiled, in one line, instead of ending in an out-of-memory abort or a compile that never ends."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ncjax.core.printable import quoted
from ncjax.errors import ModelFileError, UnsupportedModelError

# Values per image at the input or after any layer: far beyond any image classifier a scan can run (the scan
# holds batch x slots x this); absurd static shapes would otherwise abort XLA without a message.
MAX_VALUES_PER_IMAGE = 1 << 27
# Layers or nodes in one model. Compiling the scan's step grows faster than the graph's depth (on a 2-core CPU,
# 1,000 chained ONNX Relu nodes: 6 s; 2,000: 4-5 minutes); image classifiers have a few hundred.
MAX_GRAPH_NODES = 1000


def check_activation_sizes(layers, input_shape: tuple[int, int, int], path) -> None:
    """Refuse an input or layer output whose declared size no scan could hold. Layer shapes are counted whole: a
    Keras batch axis is None (left out), an ONNX row is one image's, and a value computed from constants alone has
    no batch axis at all, so its first axis counts too."""
    sizes = [("the input", tuple(input_shape))] + [(f"layer {quoted(layer.path)}", tuple(layer.output_shape))
                                                   for layer in layers]
    for name, shape in sizes:
        values = float(np.prod([d for d in shape if d], dtype=np.float64))
        if values > MAX_VALUES_PER_IMAGE or any(d is not None and d <= 0 for d in shape):
            raise ModelFileError(f"{os.fspath(path)!r}: {name} has shape {shape} per image; that is not a size an "
                                 "image classifier can have (refused before anything is allocated).")


def check_graph_size(count: int, unit: str, where: str) -> None:
    """Refuse a model of more than MAX_GRAPH_NODES `unit`s ("nodes", "layers")."""
    if count > MAX_GRAPH_NODES:
        raise UnsupportedModelError(f"{where} has {count} {unit}; ncjax scans models of at most {MAX_GRAPH_NODES} "
                                    f"{unit} (compiling the scan's step grows faster than the graph), and image "
                                    "classifiers have far fewer. It is refused before anything is compiled.")


def keras_layer_count(config: Any) -> int:
    """Layer calls in a Keras model config: a layer applied several times (its inbound nodes) counts each time, and
    a nested model counts its own layer calls each time it is applied."""
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else inner if isinstance(inner, list) else None
    if not isinstance(layers, list):
        return 0
    return sum(_calls(layer) * (1 + keras_layer_count(layer)) for layer in layers)


def _calls(layer: Any) -> int:
    inbound = layer.get("inbound_nodes") if isinstance(layer, dict) else None
    return len(inbound) if isinstance(inbound, list) and inbound else 1
