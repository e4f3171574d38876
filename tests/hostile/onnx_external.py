"""ONNX files whose tensors point at other files ("external data"), wherever ONNX lets a tensor sit.

`external_cases(models, location)` writes one file per carrier into `models`, each holding one tensor whose
data is said to live at `location`; `sentinel_tree(folder)` lays out the folder the tests run from, with FIFOs at
every location named here: opening one blocks until a writer comes, so a reader that follows external data
hangs (and the test's time limit says so) instead of passing unnoticed.

Run by hand to keep the files: `python tests/hostile/onnx_external.py OUT_FOLDER`.
"""
from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "onnx" / "torch_grouped.onnx"

# Where a bent file says its tensor's data is, seen from sentinel_tree's "models" folder (the working folder and
# the model files' folder both): a relative path, one up through "..", one through a symlinked folder, and an
# absolute one (filled in by sentinel_tree).
RELATIVE, PARENT, THROUGH_LINK = ".ssh/id_rsa", "../sentinel", "etc_link/passwd"


def sentinel_tree(folder: Path) -> tuple[Path, list[str]]:
    """`folder/models` (returned) and the locations, each a FIFO: relative, `..`, symlinked folder, absolute."""
    models = folder / "models"
    (models / ".ssh").mkdir(parents=True)
    (folder / "etc").mkdir()
    os.symlink(folder / "etc", models / "etc_link")
    absolute = folder / "absolute_sentinel"
    for fifo in (models / RELATIVE, folder / "sentinel", folder / "etc" / "passwd", absolute):
        os.mkfifo(fifo)
    return models, [RELATIVE, PARENT, THROUGH_LINK, str(absolute)]


def _external(onnx, name: str, location: str, data_type: int | None = None):
    tensor = onnx.TensorProto()
    tensor.name, tensor.data_type = name, data_type or onnx.TensorProto.INT64
    tensor.dims.extend([4])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "32")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _sparse(onnx, location: str):
    from onnx import helper

    values = _external(onnx, "leak_values", location, onnx.TensorProto.FLOAT)
    indices = helper.make_tensor("leak_indices", onnx.TensorProto.INT64, [4], [0, 1, 2, 3])
    return helper.make_sparse_tensor(values, indices, [4])


def _subgraph(onnx, inner: list, depth: int):
    """An If node whose then-branch holds `inner`, nested `depth` times (If is never run: refused before)."""
    from onnx import helper

    output = helper.make_tensor_value_info("leak", onnx.TensorProto.INT64, [4])
    nodes = inner
    for level in range(depth):
        branch = helper.make_graph(nodes, f"branch_{level}", [], [output])
        nodes = [helper.make_node("If", ["cond"], ["leak"], name=f"if_{level}", then_branch=branch,
                                  else_branch=branch)]
    return nodes[0]


def _carriers(onnx, location: str) -> dict[str, Callable]:
    from onnx import helper

    def node(**attributes):
        return lambda model: model.graph.node.append(helper.make_node("Relu", ["images"], ["unused"], name="carrier",
                                                                      **attributes))

    def constant(**attributes):
        return helper.make_node("Constant", [], ["leak"], name="leak_constant", **attributes)

    def function(model):
        body = helper.make_function("local.leak", "Leak", [], ["leak"],
                                    [constant(value=_external(onnx, "leak", location))],
                                    [helper.make_opsetid("", 17)])
        model.functions.append(body)

    def training(model):
        info = onnx.TrainingInfoProto()
        info.initialization.CopyFrom(helper.make_graph([], "init", [], [], [_external(onnx, "leak", location)]))
        model.training_info.append(info)

    return {
        "initializer": lambda model: model.graph.initializer.append(_external(onnx, "leak", location)),
        "sparse initializer": lambda model: model.graph.sparse_initializer.append(_sparse(onnx, location)),
        "Constant value": lambda model: model.graph.node.insert(0, constant(value=_external(onnx, "leak", location))),
        "Constant sparse_value": lambda model: model.graph.node.insert(
            0, constant(sparse_value=_sparse(onnx, location))),
        "tensor attribute": node(t=_external(onnx, "leak", location)),
        "tensors attribute": node(ts=[helper.make_tensor("fine", onnx.TensorProto.INT64, [1], [1]),
                                      _external(onnx, "leak", location)]),
        "sparse tensor attribute": node(st=_sparse(onnx, location)),
        "subgraph": lambda model: model.graph.node.append(
            _subgraph(onnx, [constant(value=_external(onnx, "leak", location))], 1)),
        "subgraph at depth 3": lambda model: model.graph.node.append(
            _subgraph(onnx, [constant(value=_external(onnx, "leak", location))], 3)),
        "function body": function,
        "training graph": training,
    }


CARRIERS = ("initializer", "sparse initializer", "Constant value", "Constant sparse_value", "tensor attribute",
            "tensors attribute", "sparse tensor attribute", "subgraph", "subgraph at depth 3", "function body",
            "training graph")


def external_case(models: Path, carrier: str, location: str) -> Path:
    """The ONNX fixture with one tensor carried by `carrier` whose data is said to be at `location`."""
    import onnx

    model = onnx.load(str(FIXTURE))
    _carriers(onnx, location)[carrier](model)
    path = models / f"{carrier.replace(' ', '_')}-{zlib.crc32(location.encode()):08x}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile_onnx")
    folder, locations = sentinel_tree(out)
    for carrier in CARRIERS:
        for location in locations:
            print(f"{carrier} -> {location}: {external_case(folder, carrier, location)}")
