"""A Keras model config (Sequential or Functional, nested to any depth) as a pure JAX function.

The config is parsed into call nodes in topological order; each layer is built once (shared layers are
called several times with the same params) and its output shape is worked out with `jax.eval_shape`, so
weight/shape mismatches are reported at load time, layer by layer, never at trace time.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from ncjax.core.printable import one_line, printable, quoted
from ncjax.errors import ModelFileError, UnsupportedLayerError, UnsupportedModelError
from ncjax.models.classifier import LayerSummary, param_count
from ncjax.models.keras.activations import activation_name
from ncjax.models.keras.config_values import check_config_values
from ncjax.models.keras.files import LayerPath, WeightSource
from ncjax.models.keras.layers import (
    IDENTITY_LAYERS,
    LAYER_BUILDERS,
    BuiltLayer,
    LayerSpec,
    Shape,
    is_standalone_keras2,
)

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
TensorRef = tuple[str, int, int]  # (layer name, call index, output index), as Keras' configs reference tensors


def supported_layers() -> list[str]:
    return sorted({*LAYER_BUILDERS, "InputLayer", *MODEL_CLASSES})


def _snake_case(class_name: str) -> str:
    """Keras 3's naming.to_snake_case, which older Keras 3 versions key saved weights by."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class _Node:
    layer: str
    index: int  # the call index of this layer (its n-th inbound node)
    inputs: list[TensorRef]
    call: Callable[[Any, list[jax.Array]], list[jax.Array]]


@dataclass
class Graph:
    """A built Keras model: `graph(params, inputs) -> outputs` with params keyed by layer name."""

    name: str
    inputs: list[TensorRef]
    outputs: list[TensorRef]
    nodes: list[_Node]
    params: dict[str, Any]
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    output_activation: str
    summary: list[LayerSummary] = field(default_factory=list)

    def __call__(self, params: dict[str, Any], inputs: list[jax.Array]) -> list[jax.Array]:
        values: dict[TensorRef, jax.Array] = dict(zip(self.inputs, inputs))
        for node in self.nodes:
            outputs = node.call(params.get(node.layer, {}), [values[ref] for ref in node.inputs])
            for k, value in enumerate(outputs):
                values[(node.layer, node.index, k)] = value
        return [values[ref] for ref in self.outputs]

    def activation(self, params: dict[str, Any], inputs: list[jax.Array], path: tuple[str, ...]) -> jax.Array:
        """The output of the layer at `path` (names, nested models first) on its first call."""
        values: dict[TensorRef, jax.Array] = dict(zip(self.inputs, inputs))
        for node in self.nodes:
            xs = [values[ref] for ref in node.inputs]
            if node.layer == path[0]:
                if len(path) == 1:
                    return node.call(params.get(node.layer, {}), xs)[0]
                if isinstance(node.call, Graph):
                    return node.call.activation(params[node.layer], xs, path[1:])
            for k, value in enumerate(node.call(params.get(node.layer, {}), xs)):
                values[(node.layer, node.index, k)] = value
        raise KeyError("/".join(path))

    def layer_output(self, params: dict[str, Any], x: jax.Array, layer: str) -> jax.Array:
        """Classifier.layer_output of a one-input model: `layer` is a LayerSummary path ("inner/dense")."""
        return self.activation(params, [x], tuple(layer.split("/")))


# ------------------------------------------------------------------------------------- config parsing


def layer_list(model_config: dict[str, Any]) -> list[dict[str, Any]]:
    config = model_config["config"]
    layers = config if isinstance(config, list) else config.get("layers")  # Keras <= 2.2.2: a bare list
    if not isinstance(layers, list):
        raise ModelFileError(f"model {quoted(model_config.get('class_name'))} has no layer list in its config.")
    return layers


def _model_name(model_config: dict[str, Any]) -> str:
    config = model_config["config"]
    return (config.get("name") if isinstance(config, dict) else None) or model_config.get("name") or "model"


def _batch_shape(config: dict[str, Any]) -> Shape | None:
    for key in ("batch_input_shape", "batch_shape"):
        if config.get(key) is not None:
            return tuple(config[key])
    return None


def _refs(value: Any) -> list[TensorRef]:
    """input_layers / output_layers: [[name, node, tensor], ...] or, in Keras 3, a single [name, node, tensor]."""
    if not value:
        return []
    if isinstance(value[0], str):
        value = [value]
    return [(str(v[0]), int(v[1]), int(v[2])) for v in value]


def _keras3_tensors(value: Any) -> list[TensorRef]:
    """Every `__keras_tensor__` in a Keras 3 inbound node's args, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = value["config"]["keras_history"]
            return [(str(history[0]), int(history[1]), int(history[2]))]
        return [ref for v in value.values() for ref in _keras3_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in _keras3_tensors(v)]
    return []


def _inbound_refs(node: Any, where: str) -> list[TensorRef]:
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        if _keras3_tensors(node.get("kwargs", {})):
            raise UnsupportedModelError(f"{where}: tensors passed as keyword arguments are not supported.")
        return _keras3_tensors(node.get("args", []))
    refs = []
    for entry in node:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        if len(entry) >= 4 and isinstance(entry[3], dict) and any(
            isinstance(v, list) and v and isinstance(v[0], str) for v in entry[3].values()
        ):
            raise UnsupportedModelError(f"{where}: tensors passed as keyword arguments are not supported.")
        refs.append((str(entry[0]), int(entry[1]), int(entry[2])))
    return refs


@dataclass
class _Parsed:
    name: str
    layers: dict[str, tuple[int, dict[str, Any]]]  # name -> (position, layer config entry)
    calls: dict[tuple[str, int], list[TensorRef]]  # (layer, call index) -> input refs
    inputs: list[TensorRef]
    outputs: list[TensorRef]
    input_shapes: list[Shape | None]
    class_keys: dict[str, str]  # layer name -> Keras 3 weights key (snake-cased class, deduplicated)


def _class_keys(entries: list[dict[str, Any]]) -> dict[str, str]:
    keys: dict[str, str] = {}
    used: dict[str, int] = {}
    for entry in entries:
        base = _snake_case(entry["class_name"])
        count = used.get(base, 0)
        used[base] = count + 1
        keys[entry_name(entry)] = base if count == 0 else f"{base}_{count}"
    return keys


def entry_name(entry: dict[str, Any]) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name"))


def _keras2_node_offset(layer_name: str, entry: dict[str, Any], count: int, entries: list[dict[str, Any]],
                        outputs: list[TensorRef], keras_version: str | None) -> int:
    """Where a nested model's calls start counting in a Keras 2 config.

    Keras 2 (standalone and tf.keras) numbers a nested model's calls from 1 when the model was built on its
    own Input, whose internal node 0 is not saved; Keras 3 always counts from 0. The references in the
    config settle it when they can; otherwise Keras' own rule decides: standalone Keras 2 skips node 0 of
    every nested model, tf.keras of Functional models and of Sequential models that start with an Input.
    """
    used = {ref[1] for e in entries for node in e.get("inbound_nodes") or [] if not isinstance(node, dict)
            for ref in _inbound_refs(node, "") if ref[0] == layer_name}
    used |= {ref[1] for ref in outputs if ref[0] == layer_name}
    if count in used:
        return 1
    if 0 in used:
        return 0
    if is_standalone_keras2(keras_version):
        return 1
    if entry["class_name"] != "Sequential":
        return 1
    return int(any(layer.get("class_name") == "InputLayer" for layer in layer_list(entry)))


def _parse(model_config: dict[str, Any], keras_version: str | None = None) -> _Parsed:
    name = _model_name(model_config)
    entries = layer_list(model_config)
    for entry in entries:
        if not isinstance(entry, dict) or "class_name" not in entry or not isinstance(entry.get("config"), dict):
            raise ModelFileError(f"model {quoted(name)}: a layer entry in the config has no class_name/config.")
    layers = {entry_name(e): (i, e) for i, e in enumerate(entries)}
    if model_config["class_name"] == "Sequential":
        input_entry = next((e for e in entries if e["class_name"] == "InputLayer"), None)
        body = [e for e in entries if e["class_name"] != "InputLayer"]
        if not body:
            raise ModelFileError(f"Sequential model {quoted(name)} has no layers.")
        config = model_config["config"] if isinstance(model_config["config"], dict) else {}
        shape = (_batch_shape(input_entry["config"]) if input_entry else None) or _batch_shape(body[0]["config"])
        if shape is None and config.get("build_input_shape"):
            shape = tuple(config["build_input_shape"])
        input_name = entry_name(input_entry) if input_entry else f"{name}/input"
        previous: TensorRef = (input_name, 0, 0)
        calls = {}
        for entry in body:
            calls[(entry_name(entry), 0)] = [previous]
            previous = (entry_name(entry), 0, 0)
        return _Parsed(name, layers, calls, [(input_name, 0, 0)], [previous], [shape], _class_keys(body))
    config = model_config["config"]
    inputs = _refs(config.get("input_layers"))
    outputs = _refs(config.get("output_layers"))
    calls = {}
    for layer_name, (position, entry) in layers.items():
        where = _where(layer_name, entry["class_name"], position, name)
        nodes = entry.get("inbound_nodes") or []
        refs = [_inbound_refs(node, where) for node in nodes]
        offset = 0
        if nodes and entry["class_name"] in MODEL_CLASSES and not isinstance(nodes[0], dict):
            offset = _keras2_node_offset(layer_name, entry, len(nodes), entries, outputs, keras_version)
        for index, node_refs in enumerate(refs):
            calls[(layer_name, index + offset)] = node_refs
    if not inputs or not outputs:
        raise ModelFileError(f"Functional model {quoted(name)} names no input or output layers in its config.")
    shapes = []
    for ref in inputs:
        if ref[0] not in layers:
            raise ModelFileError(f"model {quoted(name)}: input layer {quoted(ref[0])} is not among its layers.")
        shapes.append(_batch_shape(layers[ref[0]][1]["config"]))
    return _Parsed(name, layers, calls, inputs, outputs, shapes, _class_keys(entries))


def _topological(parsed: _Parsed) -> list[tuple[str, int]]:
    """The calls needed for the outputs, each after the calls it reads from."""
    order: list[tuple[str, int]] = []
    state: dict[tuple[str, int], int] = {}  # 1: visiting, 2: done
    inputs = {(ref[0], ref[1]) for ref in parsed.inputs}

    def visit(key: tuple[str, int]) -> None:
        if key in inputs or state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise ModelFileError(f"model {quoted(parsed.name)}: the layer graph has a cycle through {quoted(key[0])}.")
        if key not in parsed.calls:
            raise ModelFileError(
                f"model {quoted(parsed.name)}: a layer reads the output of {quoted(key[0])} (call {key[1]}), "
                "which the config does not define."
            )
        state[key] = 1
        for ref in parsed.calls[key]:
            visit((ref[0], ref[1]))
        state[key] = 2
        order.append(key)

    for ref in parsed.outputs:
        visit((ref[0], ref[1]))
    return order


# --------------------------------------------------------------------------------------------- building


def _final_call(parsed: _Parsed, order: list[tuple[str, int]]) -> tuple[str, int] | None:
    """The call that makes the model's output, looking through dropout-like identity layers."""
    if len(parsed.outputs) != 1:
        return None
    key = (parsed.outputs[0][0], parsed.outputs[0][1])
    while key in parsed.calls:
        entry = parsed.layers[key[0]][1]
        if entry["class_name"] not in IDENTITY_LAYERS or len(parsed.calls[key]) != 1:
            return key
        ref = parsed.calls[key][0]
        key = (ref[0], ref[1])
    return None


def _without_softmax(spec: LayerSpec) -> tuple[LayerSpec, str]:
    """The spec with a final softmax removed, and the activation the layer applied."""
    config = spec.config
    if spec.class_name == "Softmax":
        axis = config.get("axis", -1)
        if axis in (-1, [-1]):
            linear = LayerSpec(spec.name, "Activation", {"activation": "linear"}, spec.where, spec.keras_version)
            return linear, "softmax"
        return spec, "softmax"
    if "activation" in config:
        name = activation_name(config["activation"]) or str(config["activation"])
        if name == "softmax":
            return LayerSpec(spec.name, spec.class_name, {**config, "activation": "linear"}, spec.where,
                             spec.keras_version), "softmax"
        return spec, name
    return spec, "linear"


@dataclass
class _Build:
    """What building one model's graph accumulates, layer call by layer call."""

    shapes: dict[TensorRef, Shape]
    built: dict[str, tuple[Any, Callable]] = field(default_factory=dict)  # layer -> (params, call returning a list)
    params: dict[str, Any] = field(default_factory=dict)
    summary: list[LayerSummary] = field(default_factory=list)
    nodes: list[_Node] = field(default_factory=list)
    output_activation: str = "linear"


@dataclass(frozen=True)
class _Call:
    """One call of a layer in the graph: where it is, what it reads, and whether its softmax is stripped."""

    key: tuple[str, int]
    entry: dict[str, Any]
    where: str
    in_shapes: list[Shape]
    path: LayerPath  # the layer's names from the top-level model down
    class_path: LayerPath  # the same, as older Keras 3 versions key it
    depth: int  # 0 for top-level layers
    final: bool  # the model's last call, whose softmax is stripped


def build_graph(
    model_config: dict[str, Any],
    weights: WeightSource,
    *,
    keras_version: str | None,
    input_shapes: list[Shape] | None = None,
    path: LayerPath = (),
    class_path: LayerPath = (),
    strip_softmax: bool = False,
) -> Graph:
    """Build the model described by `model_config` with its weights from `weights`."""
    parsed = _parse(model_config, keras_version)
    given = parsed.input_shapes if input_shapes is None else input_shapes
    shapes = [s for s in given if s is not None]
    if len(shapes) != len(given) or len(shapes) != len(parsed.inputs):
        raise UnsupportedModelError(
            f"model {quoted(parsed.name)} does not record its input shape; pass input_shape=(H, W, C) to load_model."
        )
    order = _topological(parsed)
    final = _final_call(parsed, order) if strip_softmax else None
    build = _Build({ref: tuple(s) for ref, s in zip(parsed.inputs, shapes)})
    for key in order:
        call = _call_of(parsed, key, build, path=path, class_path=class_path, final=key == final)
        layer_call = (_nested_model if call.entry["class_name"] in MODEL_CLASSES else _layer)(
            call, build, weights, keras_version)
        _record(call, layer_call, build, parsed)
    if not path:
        _check_unused_weights(weights, set(build.params) | set(parsed.class_keys.values()))
    return Graph(parsed.name, parsed.inputs, parsed.outputs, build.nodes, build.params, shapes,
                 [build.shapes[ref] for ref in parsed.outputs], build.output_activation, build.summary)


def _call_of(parsed: _Parsed, key, build: _Build, *, path: LayerPath, class_path: LayerPath, final: bool) -> _Call:
    layer_name = key[0]
    position, entry = parsed.layers[layer_name]
    where = _where(layer_name, entry["class_name"], position, parsed.name)
    for ref in parsed.calls[key]:
        if ref not in build.shapes:
            raise ModelFileError(f"{where}: it reads output {ref[2]} of {quoted(ref[0])}, which has no such "
                                 "output.")
    return _Call(key, entry, where, [build.shapes[ref] for ref in parsed.calls[key]], path + (layer_name,),
                 class_path + (parsed.class_keys.get(layer_name, layer_name),), len(path), final)


def _nested_model(call: _Call, build: _Build, weights: WeightSource, keras_version: str | None) -> Callable:
    """A model used as a layer: built once (again for the final call, whose softmax is stripped)."""
    layer_name = call.key[0]
    if layer_name in build.built and not call.final:
        return build.built[layer_name][1]
    sub = build_graph(call.entry, weights, keras_version=keras_version, input_shapes=call.in_shapes,
                      path=call.path, class_path=call.class_path, strip_softmax=call.final)
    if call.final:
        build.output_activation = sub.output_activation
    if layer_name not in build.built:
        build.built[layer_name] = (sub.params, sub)
        build.params[layer_name] = sub.params
        build.summary.append(LayerSummary("/".join(call.path), call.entry["class_name"], sub.output_shapes[0],
                                          param_count(sub.params), call.depth))
        build.summary.extend(sub.summary)
    return sub


def _layer(call: _Call, build: _Build, weights: WeightSource, keras_version: str | None) -> Callable:
    """A built-in layer: its config checked, built once with its weights (the final call without its softmax)."""
    layer_name, class_name = call.key[0], call.entry["class_name"]
    if class_name == "InputLayer":
        raise ModelFileError(f"{call.where}: an InputLayer is called on another tensor.")
    builder = LAYER_BUILDERS.get(class_name)
    if builder is None:
        raise _unsupported(call.where, class_name)
    check_config_values(class_name, call.entry["config"], call.where)
    spec = LayerSpec(layer_name, class_name, call.entry["config"], call.where, keras_version)
    if layer_name not in build.built:
        layer = builder(spec, weights.get(call.path, call.class_path), call.in_shapes)
        build.built[layer_name] = (layer.params, _single(layer))
        build.params[layer_name] = layer.params
    if call.final:
        final_spec, build.output_activation = _without_softmax(spec)
        if final_spec is not spec:
            # Reuse the stored params; rebuild only to drop the activation from this call.
            final_builder = LAYER_BUILDERS[final_spec.class_name]
            return _single(final_builder(final_spec, weights.get(call.path, call.class_path), call.in_shapes))
    return build.built[layer_name][1]


def _record(call: _Call, layer_call: Callable, build: _Build, parsed: _Parsed) -> None:
    """The call's output shapes (checked by tracing it), its summary row and its graph node."""
    layer_name, index = call.key
    try:
        out = jax.eval_shape(layer_call, build.built[layer_name][0], [_struct(s) for s in call.in_shapes])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{call.where}: its inputs of shapes {call.in_shapes} do not fit its config "
                             f"({one_line(e, limit=300)}).") from e
    for k, struct in enumerate(out):
        build.shapes[(layer_name, index, k)] = (None,) + tuple(struct.shape[1:])
    if call.entry["class_name"] not in MODEL_CLASSES and index == 0:
        build.summary.append(LayerSummary("/".join(call.path), call.entry["class_name"],
                                          build.shapes[(layer_name, index, 0)],
                                          param_count(build.built[layer_name][0]), call.depth))
    build.nodes.append(_Node(layer_name, index, parsed.calls[call.key], layer_call))


def _where(layer_name: str, class_name: str, position: int, model_name: str) -> str:
    return (f"layer {quoted(layer_name)} (class {printable(class_name, limit=40)}, position {position} in model "
            f"{quoted(model_name)})")


def _single(layer: BuiltLayer) -> Callable:
    return lambda p, xs: [layer.call(p, xs)]


def _struct(shape: Shape) -> jax.ShapeDtypeStruct:
    # One example stands for the batch: every layer here treats batch items independently.
    return jax.ShapeDtypeStruct((1,) + tuple(shape[1:]), jnp.float32)


def _check_unused_weights(weights: WeightSource, known: set[str]) -> None:
    unused = [p for p in weights.paths() if len(p) == 1 and p[0] not in known]
    if unused:
        names = ", ".join(quoted(p[0]) for p in unused[:5])
        raise ModelFileError(
            f"the file stores weights for layer(s) {names} that the architecture does not have: the weights "
            "and the architecture do not belong together."
        )


def _unsupported(where: str, class_name: str) -> UnsupportedLayerError:
    if class_name == "Lambda":
        why = ("Lambda layers hold Python bytecode, which ncjax never executes. Replace the Lambda with "
               "built-in layers, or convert the model to ONNX.")
    elif class_name in ("TFOpLambda", "SlicingOpLambda"):
        why = "it calls a TensorFlow op directly, which ncjax does not translate. Use built-in Keras layers."
    else:
        why = "ncjax does not implement this layer (custom layers are never executed from the file)."
    return UnsupportedLayerError(
        f"{where} is not supported: {why} Supported layers: {', '.join(supported_layers())}."
    )


def declared_input_shapes(model_config: dict[str, Any]) -> list[Shape | None]:
    """The input shapes (batch first) a model config records, one per input."""
    return _parse(model_config).input_shapes
