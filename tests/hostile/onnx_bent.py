"""Bent ONNX files: a small valid classifier graph, each case changing one thing a hostile or broken export could.

`bent_cases(folder)` writes one `.onnx` file per case and returns `Case`s (name, path, a fragment the one-line
refusal must contain). Attributes out of range, graphs that are not graphs, versions no one defined, sizes no scan
could hold, and data that does not fill its tensor: each is refused by `python -m ncjax.inspect` and
`python -m ncjax.run` with one line and exit 2 (tests/test_hostile.py).

Run by hand to keep the files: `python tests/hostile/onnx_bent.py OUT_FOLDER`.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hostile.make_hostile import Case

H = W = 8  # the base graph: (N, 3, 8, 8) -> Conv 4x3x3x3 -> Relu -> MaxPool 2 -> GlobalAveragePool -> Gemm -> (N, 5)


def _base(onnx):
    """The valid base model as editable lists: nodes, initializers, the input and output infos, opset."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "conv_w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "conv_b"),
             numpy_helper.from_array(rng.normal(size=(5, 4)).astype(np.float32), "fc_w"),
             numpy_helper.from_array(np.zeros(5, np.float32), "fc_b"),
             numpy_helper.from_array(np.array([-1, 4], np.int64), "flat_shape")]
    nodes = [helper.make_node("Conv", ["images", "conv_w", "conv_b"], ["conv"], name="conv", pads=[1, 1, 1, 1],
                              kernel_shape=[3, 3], strides=[1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
             helper.make_node("MaxPool", ["relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"),
             helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1)]
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, H, W])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])]
    return {"nodes": nodes, "inits": inits, "inputs": inputs, "outputs": outputs, "opset": 17, "ir": 8}


def _model(onnx, parts):
    from onnx import helper

    graph = helper.make_graph(parts["nodes"], "bent", parts["inputs"], parts["outputs"], parts["inits"])
    opsets = [] if parts["opset"] is None else [helper.make_opsetid("", parts["opset"])]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="bent")
    model.ir_version = parts["ir"]
    return model


def _node(parts, name: str):
    return next(n for n in parts["nodes"] if n.name == name)


def _set(name: str, **attributes) -> Callable[[dict], None]:
    """Replace attributes of node `name`."""
    from onnx import helper

    def edit(parts):
        node = _node(parts, name)
        for key, value in attributes.items():
            for kept in [a for a in node.attribute if a.name == key]:
                node.attribute.remove(kept)
            node.attribute.append(helper.make_attribute(key, value))
    return edit


def _insert_after(name: str, make: Callable[[str, str], list]) -> Callable[[dict], None]:
    """Put nodes made by make(input, output) between node `name` and its readers."""
    def edit(parts):
        node = _node(parts, name)
        old = node.output[0]
        node.output[0] = f"{old}_pre"
        position = parts["nodes"].index(node) + 1
        parts["nodes"][position:position] = make(f"{old}_pre", old)
    return edit


def _chain(count: int) -> Callable[[dict], None]:
    from onnx import helper

    def make(src, dst):
        names = [src] + [f"chain_{i}" for i in range(count - 1)] + [dst]
        return [helper.make_node("Relu", [a], [b], name=f"chain_node_{i}") for i, (a, b) in enumerate(zip(names,
                                                                                                           names[1:]))]
    return _insert_after("relu", make)


def _const(name: str, values, dtype=np.int64):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype), name)


def _op_after(name: str, op_type: str, extra_inputs=(), inits=(), **attributes) -> Callable[[dict], None]:
    from onnx import helper

    def edit(parts):
        parts["inits"].extend(inits)
        _insert_after(name, lambda src, dst: [helper.make_node(op_type, [src, *extra_inputs], [dst],
                                                               name=f"bent_{op_type.lower()}", **attributes)])(parts)
    return edit


def _from_constants(nodes: list, inits: list) -> Callable[[dict], None]:
    """Nodes that compute from constants alone, before the graph's own (their outputs unused)."""
    def edit(parts):
        parts["inits"].extend(inits)
        parts["nodes"][0:0] = nodes
    return edit


def _doubling(times: int, dtype=np.int64) -> Callable[[dict], None]:
    """A constant concatenated with itself `times` times: 2**times values from a file of a few bytes (integers are
    computed by numpy as the graph is read, floats traced as weights are)."""
    from onnx import helper

    names = ["seed"] + [f"doubled_{i}" for i in range(times)]
    return _from_constants([helper.make_node("Concat", [a, a], [b], name=b, axis=0)
                            for a, b in zip(names, names[1:])], [_const("seed", [1], dtype)])


def _edits(onnx) -> list[tuple[str, str, Callable[[dict], None]]]:
    from onnx import TensorProto, helper

    def opset(v):
        return lambda parts: parts.__setitem__("opset", v)

    def input_dims(*dims):
        return lambda parts: parts.__setitem__("inputs", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                                        list(dims))])

    def reads_nothing(parts):
        _node(parts, "relu").input[0] = "nowhere"

    def cycle(parts):
        _node(parts, "relu").input[0] = "pool"

    def output_missing(parts):
        parts["outputs"] = [helper.make_tensor_value_info("absent", TensorProto.FLOAT, ["N", 5])]

    def duplicate_output(parts):
        _node(parts, "pool").output[0] = "conv"
        _node(parts, "gap").input[0] = "conv"

    def negative_dims(parts):
        tensor = parts["inits"][1]
        del tensor.dims[:]
        tensor.dims.extend([-4])

    def short_data(parts):
        tensor = parts["inits"][0]
        tensor.raw_data = tensor.raw_data[:40]

    def string_init(parts):
        parts["inits"].append(helper.make_tensor("words", TensorProto.STRING, [1], [b"x"]))

    def string_input(parts):
        parts["inputs"] = [helper.make_tensor_value_info("images", TensorProto.STRING, ["N", 3, H, W])]

    def if_node(parts):
        branch = helper.make_graph([helper.make_node("Identity", ["gap"], ["out_b"])], "b", [],
                                   [helper.make_tensor_value_info("out_b", TensorProto.FLOAT, None)])
        _insert_after("gap", lambda src, dst: [helper.make_node("If", ["cond"], [dst], name="branch",
                                                                then_branch=branch, else_branch=branch)])(parts)
        parts["inits"].append(_const("cond", True, np.bool_))

    def graph_attribute(parts):
        inner = helper.make_graph([], "inner", [], [])
        _node(parts, "relu").attribute.append(helper.make_attribute("body", inner))

    def newline_op(parts):
        _node(parts, "relu").op_type = "Relu\nverdict: clean"

    def newline_domain(parts):
        _node(parts, "relu").domain = "evil\ncom"

    def batch_slice(parts):
        parts["inits"].extend([_const("s0", [0]), _const("s1", [1]), _const("sax", [0])])
        _insert_after("fc", lambda src, dst: [helper.make_node("Slice", [src, "s0", "s1", "sax"], [dst],
                                                               name="batch_slice")])(parts)

    def three_dim_output(parts):
        parts["inits"].append(_const("ax", [2]))
        _insert_after("fc", lambda src, dst: [helper.make_node("Unsqueeze", [src, "ax"], [dst], name="more")])(parts)

    def one_class(parts):
        from onnx import numpy_helper
        parts["inits"][2] = numpy_helper.from_array(np.ones((1, 4), np.float32), "fc_w")
        parts["inits"][3] = numpy_helper.from_array(np.zeros(1, np.float32), "fc_b")
        parts["outputs"] = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])]

    def no_nodes(parts):
        parts["nodes"] = []

    def two_inputs(parts):
        parts["inputs"].append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 3]))

    return [
        ("opset 1", "opset", opset(1)),
        ("opset 99", "opset", opset(99)),
        ("no opset", "opset", opset(None)),
        ("IR version 0", "IR version", lambda parts: parts.__setitem__("ir", 0)),
        ("input 3x30000x30000", "not a size", input_dims("N", 3, 30000, 30000)),
        ("input 100000x100000", "not a size", input_dims("N", 3, 100000, 100000)),
        ("input of zero height", "not a size", input_dims("N", 3, 0, W)),
        ("input of five dims", "dimensions", input_dims("N", 3, H, W, 1)),
        ("fixed batch of 7", "batch", input_dims(7, 3, H, W)),
        ("string input", "element type", string_input),
        ("conv pads 3000", "not a size", _set("conv", pads=[3000] * 4)),
        ("conv pads 10^6", "not a size", _set("conv", pads=[10**6] * 4)),
        ("conv pads negative", "pads", _set("conv", pads=[-1] * 4)),
        ("conv strides 0", "strides", _set("conv", strides=[0, 0])),
        ("conv strides negative", "strides", _set("conv", strides=[-2, -2])),
        ("conv dilations 0", "dilations", _set("conv", dilations=[0, 0])),
        ("conv kernel 0", "kernel", _set("conv", kernel_shape=[0, 0])),
        ("conv kernel not the weights'", "kernel", _set("conv", kernel_shape=[5, 5])),
        ("conv group 5", "group", _set("conv", group=5)),
        ("conv pads one INT", "of type INT, where Conv takes INTS", _set("conv", pads=1)),
        ("Gemm transB a string", "of type STRING, where Gemm takes INT", _set("fc", transB="yes")),
        ("MaxPool ceil_mode 5", "must be 0 or 1", _set("pool", ceil_mode=5)),
        ("an attribute Relu does not define", "does not define", _set("relu", alpha=0.5)),
        ("conv auto_pad unknown", "auto_pad", _set("conv", auto_pad="SIDEWAYS")),
        ("pool kernel larger than input", "window", _set("pool", kernel_shape=[50, 50])),
        ("pool strides 0", "strides", _set("pool", strides=[0, 0])),
        ("huge Pad", "not a size", _op_after("relu", "Pad", ["pad_amounts"],
                                             [_const("pad_amounts", [0, 0, 10**5, 10**5, 0, 0, 10**5, 10**5])])),
        ("Pad negative beyond the size", "Pad", _op_after("relu", "Pad", ["pad_amounts"],
                                                          [_const("pad_amounts", [0, 0, -50, -50, 0, 0, 0, 0])])),
        ("Pad mode unknown", "mode", _op_after("relu", "Pad", ["pad_amounts"], [_const("pad_amounts", [0] * 8)],
                                               mode="mirror")),
        ("Cast to complex", "Cast", _op_after("relu", "Cast", to=TensorProto.COMPLEX64)),
        ("Cast to string", "Cast", _op_after("relu", "Cast", to=TensorProto.STRING)),
        ("Reshape target does not divide", "Reshape", _reshape_target([-1, 3])),
        ("Reshape two -1", "Reshape", _reshape_target([-1, -1])),
        ("Reshape target -7", "Reshape", _reshape_target([-7, 4])),
        ("Reshape target 10^12", "Reshape", _reshape_target([10**12, 4])),
        ("Gather index out of range", "index", _op_after("relu", "Gather", ["gi"], [_const("gi", [9])], axis=1)),
        ("Gather axis out of range", "axis", _op_after("relu", "Gather", ["gi"], [_const("gi", [0])], axis=9)),
        ("Slice axis out of range", "axes", _op_after("relu", "Slice", ["ss", "se", "sa"],
                                                      [_const("ss", [0]), _const("se", [2]), _const("sa", [7])])),
        ("Slice step 0", "step", _op_after("relu", "Slice", ["ss", "se", "sa", "st"],
                                           [_const("ss", [0]), _const("se", [2]), _const("sa", [1]),
                                            _const("st", [0])])),
        ("Concat axis out of range", "Concat", _op_after("relu", "Concat", ["relu_pre"], axis=9)),
        ("Transpose perm invalid", "Transpose", _op_after("relu", "Transpose", perm=[0, 0, 1, 2])),
        ("Flatten axis out of range", "Flatten", _op_after("gap", "Flatten", axis=9)),
        ("Squeeze of a non-1 axis", "Squeeze", _op_after("relu", "Squeeze", ["sq"], [_const("sq", [1])])),
        ("ReduceMean axis out of range", "ReduceMean", _op_after("gap", "ReduceMean", axes=[9])),
        ("Softmax axis out of range", "Softmax", _op_after("relu", "Softmax", axis=9)),
        ("Clip bounds not scalars", "Clip", _op_after("relu", "Clip", ["cl", ""], [_const("cl", [1, 2], np.float32)])),
        ("BatchNorm channels wrong", "BatchNormalization",
         _op_after("relu", "BatchNormalization", ["bn_s", "bn_b", "bn_m", "bn_v"],
                   [_const(n, np.ones(7), np.float32) for n in ("bn_s", "bn_b", "bn_m", "bn_v")])),
        ("Gemm shapes wrong", "Gemm", _set("fc", transB=0)),
        ("20,000 chained Relu", "nodes", _chain(20_000)),
        ("ConstantOfShape of 10^10 values", "constants alone", _from_constants(
            [helper.make_node("ConstantOfShape", ["huge_shape"], ["filled"], name="filled")],
            [_const("huge_shape", [100_000, 100_000])])),
        ("an integer constant doubled 40 times", "constants alone", _doubling(40)),
        ("a float constant doubled 40 times", "not a size", _doubling(40, np.float32)),
        ("integer constants broadcast to 10^10 values", "constants alone", _from_constants(
            [helper.make_node("Mul", ["column", "row"], ["square"], name="square")],
            [_const("column", np.zeros((100_000, 1))), _const("row", np.zeros((1, 100_000)))])),
        ("float constants broadcast to 10^10 values", "not a size", _from_constants(
            [helper.make_node("Add", ["column", "row"], ["square"], name="square")],
            [_const("column", np.zeros((100_000, 1)), np.float32), _const("row", np.zeros((1, 100_000)), np.float32)])),
        ("a float constant padded by 10^6", "not a size", _from_constants(
            [helper.make_node("Pad", ["small", "wide"], ["padded"], name="padded")],
            [_const("small", np.zeros((2, 2)), np.float32), _const("wide", [10**6] * 4)])),
        ("a node reads nothing", "reads", reads_nothing),
        ("a cycle", "reads", cycle),
        ("graph output never computed", "output", output_missing),
        ("a value defined twice", "defines", duplicate_output),
        ("initializer with negative dims", "tensor", negative_dims),
        ("initializer shorter than its dims", "tensor", short_data),
        ("string initializer", "element type", string_init),
        ("If node", "If", if_node),
        ("graph attribute on a node", "graph", graph_attribute),
        ("newline in op type", "ONNX", newline_op),
        ("newline in domain", "custom operator", newline_domain),
        ("output slices the batch", "batch", batch_slice),
        ("output of three dims", "output", three_dim_output),
        ("no nodes", "output", no_nodes),
        ("one class", "2 or more classes", one_class),
        ("two inputs", "input", two_inputs),
    ]


def _reshape_target(target: list[int]) -> Callable[[dict], None]:
    def edit(parts):
        parts["inits"][4] = _const("flat_shape", target)
    return edit


def bent_cases(folder: Path) -> list[Case]:
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (name, says, edit) in enumerate(_edits(onnx)):
        parts = _base(onnx)
        edit(parts)
        path = folder / f"bent_{index:02d}.onnx"
        path.write_bytes(_model(onnx, parts).SerializeToString())
        cases.append(Case(name, path, says))
    return cases


def base_model(folder: Path) -> Path:
    """The unbent base model, which loads and classifies (N, 8, 8, 3) images into 5 classes."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "base.onnx"
    path.write_bytes(_model(onnx, _base(onnx)).SerializeToString())
    return path


def compute_bomb(folder: Path, *, convs: int = 300, channels: int = 512, size: int = 256) -> Path:
    """A 9 MB file whose every activation is within the per-image bound but whose scan would take weeks: `convs`
    convolutions of `channels` channels over `size` x `size` images, all sharing one weight tensor."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(channels, 3, 3, 3)).astype(np.float32), "stem_w"),
             numpy_helper.from_array(rng.normal(size=(channels, channels, 3, 3)).astype(np.float32), "shared_w"),
             numpy_helper.from_array(rng.normal(size=(5, channels)).astype(np.float32), "fc_w"),
             numpy_helper.from_array(np.array([-1, channels], np.int64), "flat_shape")]
    names = ["images", "stem"] + [f"conv_{i}" for i in range(convs)]
    nodes = [helper.make_node("Conv", ["images", "stem_w"], ["stem"], name="stem", pads=[1] * 4, kernel_shape=[3, 3])]
    nodes += [helper.make_node("Conv", [a, "shared_w"], [b], name=b, pads=[1] * 4, kernel_shape=[3, 3])
              for a, b in zip(names[1:], names[2:])]
    nodes += [helper.make_node("GlobalAveragePool", [names[-1]], ["gap"], name="gap"),
              helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "fc_w"], ["logits"], name="fc", transB=1)]
    parts = {"nodes": nodes, "inits": inits, "opset": 17, "ir": 8,
             "inputs": [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
             "outputs": [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compute_bomb.onnx"
    path.write_bytes(_model(onnx, parts).SerializeToString())
    return path


def nan_output_model(folder: Path) -> Path:
    """The base model with NaN weights in its last layer: it loads, and every output is NaN."""
    import onnx
    from onnx import numpy_helper

    parts = _base(onnx)
    parts["inits"][2] = numpy_helper.from_array(np.full((5, 4), np.nan, np.float32), "fc_w")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nan_output.onnx"
    path.write_bytes(_model(onnx, parts).SerializeToString())
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bent_onnx")
    print(f"base: {base_model(out)}")
    for case in bent_cases(out):
        print(f"{case.name}: {case.path}")
