"""Model files carrying something planted: CANARY inside a tensor (which no output may show), or a name holding a
newline and terminal escapes (which every output must show as visible escapes, never obey).

Run by hand to keep the files: `python tests/hostile/planted.py OUT_FOLDER`.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from hostile.checks import CANARY

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ONNX_MODEL = FIXTURES / "onnx" / "torch_flatten.onnx"  # 16x16x3 NCHW, 5 classes, softmax
KERAS_H5 = FIXTURES / "keras" / "tfkeras" / "sequential.h5"  # 12x12x3, 5 classes
# A name that, printed raw, would end the line, forge a verdict, clear the screen and turn the text red.
FORGED = "evil\nverdict: clean: score 1.00 (forged)\x1b[2J\x1b[31m"
FORGED_SHOWN = "evil\\nverdict: clean: score 1.00 (forged)\\x1b[2J\\x1b[31m"


@dataclass(frozen=True)
class Planted:
    name: str
    path: Path
    loads: bool  # whether the model still loads and scans (the plant sits where nothing reads it)


def _canary_ints() -> np.ndarray:
    return np.frombuffer(CANARY, np.uint8).astype(np.int64)


def canary_cases(folder: Path) -> list[Planted]:
    """The ONNX fixture with CANARY's bytes as a Reshape target, Gather indices, Pad amounts, and unused tensors."""
    import onnx
    from onnx import helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    cases = []

    def save(name: str, model, loads: bool) -> None:
        path = folder / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        cases.append(Planted(name, path, loads))

    def constant_value(model, node_name: str, value: np.ndarray) -> None:
        node = next(n for n in model.graph.node if n.name == node_name)
        node.attribute[0].t.CopyFrom(numpy_helper.from_array(value))

    model = onnx.load(str(ONNX_MODEL))
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    model.graph.node.insert(0, helper.make_node("Constant", [], ["canary_shape"], name="canary_shape",
                                                value=numpy_helper.from_array(_canary_ints())))
    reshape.input[1] = "canary_shape"
    save("reshape_target", model, False)

    model = onnx.load(str(ONNX_MODEL))
    constant_value(model, "/Constant_1", _canary_ints())  # Gather's indices into a 4-entry shape
    save("gather_indices", model, False)

    model = onnx.load(str(ONNX_MODEL))
    first = model.graph.node[1]  # /Div reads the images
    model.graph.node.insert(0, helper.make_node("Pad", ["images", "canary_pads"], ["padded"], name="canary_pad"))
    model.graph.initializer.append(numpy_helper.from_array(_canary_ints()[:8], "canary_pads"))
    first.input[0] = "padded"
    save("pad_amounts", model, False)

    model = onnx.load(str(ONNX_MODEL))
    model.graph.initializer.append(numpy_helper.from_array(np.frombuffer(CANARY, np.uint8).copy(), "canary_bytes"))
    model.graph.node.insert(0, helper.make_node("Constant", [], ["unused"], name="canary_constant",
                                                value=numpy_helper.from_array(_canary_ints())))
    save("unused_tensors", model, True)
    return cases


def _keras_copy(folder: Path, name: str) -> Path:
    path = folder / name
    shutil.copy(KERAS_H5, path)
    return path


def _edit_config(path: Path, edit) -> Path:
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return path


def _weightless_layer(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"]
                if layer["class_name"] in ("Flatten", "Dropout", "MaxPooling2D"))


def named_cases(folder: Path) -> list[Planted]:
    """Files whose names (layer, class, node, op type, domain, version, the file's own) hold FORGED."""
    import onnx
    from onnx import helper

    folder.mkdir(parents=True, exist_ok=True)
    cases = []

    def layer_name(config: dict) -> None:
        _weightless_layer(config)["config"]["name"] = FORGED

    def class_name(config: dict) -> None:
        _weightless_layer(config)["class_name"] = FORGED

    cases.append(Planted("Keras layer name", _edit_config(_keras_copy(folder, "layer_name.h5"), layer_name), True))
    cases.append(Planted("Keras class name", _edit_config(_keras_copy(folder, "class_name.h5"), class_name), False))
    version = _keras_copy(folder, "version.h5")
    with h5py.File(version, "r+") as f:
        f.attrs["keras_version"] = FORGED
    cases.append(Planted("Keras version", version, True))
    forged_file = folder / "model\nverdict: clean\x1b[2J.h5"
    shutil.copy(KERAS_H5, forged_file)
    cases.append(Planted("the file's own name", forged_file, True))

    def onnx_case(name: str, edit, loads: bool) -> None:
        model = onnx.load(str(ONNX_MODEL))
        edit(model)
        path = folder / f"{name.replace(' ', '_')}.onnx"
        path.write_bytes(model.SerializeToString())
        cases.append(Planted(name, path, loads))

    def rename_relu(model) -> None:
        next(n for n in model.graph.node if n.op_type == "Relu").name = FORGED

    def bad_op_type(model) -> None:
        model.graph.node.insert(0, helper.make_node(FORGED, ["images"], ["unused"], name="plain"))

    def bad_domain(model) -> None:
        model.graph.node.insert(0, helper.make_node("MyOp", ["images"], ["unused"], name="plain", domain=FORGED))

    def bad_auto_pad(model) -> None:
        conv = next(n for n in model.graph.node if n.op_type == "Conv")
        conv.attribute.append(helper.make_attribute("auto_pad", FORGED))

    onnx_case("ONNX node name", rename_relu, True)
    onnx_case("ONNX op type", bad_op_type, False)
    onnx_case("ONNX domain", bad_domain, False)
    onnx_case("ONNX string attribute", bad_auto_pad, False)
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "planted_out")
    for case in canary_cases(out / "canary") + named_cases(out / "named"):
        print(f"{case.name}: {case.path}")
