"""Hostile and bent inputs, built on the fly in a folder (the repository holds no binary junk).

`model_cases(folder)` bends the committed Keras and ONNX fixtures into files a user might be handed: two
formats in one file, links and storage that reach other files, special files, absurd sizes, broken configs.
`data_cases(folder)` does the same for clean-image data given with a good model. Each case is refused with one
line (exit 2) by `python -m ncjax.inspect` / `python -m ncjax.run`; tests/test_hostile.py checks that.

Run by hand to keep the files: `python tests/hostile/make_hostile.py OUT_FOLDER`.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KERAS_H5 = FIXTURES / "keras" / "tfkeras" / "sequential.h5"  # 12x12x3 input, 5 classes
KERAS_ZIP = FIXTURES / "keras" / "keras3" / "sequential.keras"
SECRET = "/etc/hostname"  # a file outside the model that a bent file tries to make ncjax read


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    says: str  # a fragment the one-line error must contain


def _copy_h5(folder: Path, name: str, edit: Callable[[h5py.File], None]) -> Path:
    path = folder / name
    shutil.copy(KERAS_H5, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _first_weight(f: h5py.File) -> tuple[h5py.Group, str]:
    layer = f["model_weights"]["dense"] if "dense" in f["model_weights"] else next(
        f["model_weights"][k] for k in f["model_weights"] if len(f["model_weights"][k].attrs.get("weight_names", [])))
    name = layer.attrs["weight_names"][0]
    return layer, name.decode() if isinstance(name, bytes) else str(name)


def _external_storage(f: h5py.File) -> None:
    group, name = _first_weight(f)
    shape, dtype = group[name].shape, group[name].dtype
    del group[name]
    group.create_dataset(name, shape=shape, dtype=dtype, external=[(SECRET, 0, h5py.h5f.UNLIMITED)])


def _virtual(f: h5py.File) -> None:
    group, name = _first_weight(f)
    shape, dtype = group[name].shape, group[name].dtype
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[...] = h5py.VirtualSource(SECRET, "data", shape=shape)
    del group[name]
    group.create_virtual_dataset(name, layout)


def _huge(f: h5py.File) -> None:
    group, name = _first_weight(f)
    del group[name]
    group.create_dataset(name, shape=(100_000, 100_000), dtype="f4")  # 37 GiB declared, nothing written


def _config(edit: Callable[[dict], None]) -> Callable[[h5py.File], None]:
    def apply(f: h5py.File) -> None:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return apply


def _layer(config: dict, class_name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == class_name)["config"]


def _more_layers(count: int) -> Callable[[dict], None]:
    """`count` linear Activation layers after the first: a model that builds, only long."""
    return lambda c: c["config"].__setitem__("layers", c["config"]["layers"][:1] + [
        {"class_name": "Activation", "config": {"name": f"act_{i}", "activation": "linear"}}
        for i in range(count)] + c["config"]["layers"][1:])


def _keras_zip_with(folder: Path, name: str, edit: Callable[[h5py.File], None]) -> Path:
    with zipfile.ZipFile(KERAS_ZIP) as source:
        members = {n: source.read(n) for n in source.namelist()}
    weights = folder / f"{name}.weights.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as f:
        edit(f)
    members["model.weights.h5"] = weights.read_bytes()
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def model_cases(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    polyglot = folder / "polyglot.h5"
    polyglot.write_bytes(KERAS_H5.read_bytes() + KERAS_ZIP.read_bytes())  # an HDF5 file and a .keras zip at once
    cases.append(Case("hdf5 and zip in one file", polyglot, "both an HDF5 file and a zip archive"))
    cases.append(Case("external link", _copy_h5(folder, "extlink.h5", lambda f: f["model_weights"].__setitem__(
        "leak", h5py.ExternalLink(SECRET, "/"))), "external link"))
    cases.append(Case("soft link", _copy_h5(folder, "softlink.h5", lambda f: f["model_weights"].__setitem__(
        "loop", h5py.SoftLink("/model_weights"))), "soft link"))
    cases.append(Case("external storage", _copy_h5(folder, "extstore.h5", _external_storage), "other files"))
    cases.append(Case("virtual dataset", _copy_h5(folder, "virtual.h5", _virtual), "virtual dataset"))
    cases.append(Case("37 GiB declared", _copy_h5(folder, "huge.h5", _huge), "GiB"))
    cases.append(Case("external link inside .keras", _keras_zip_with(folder, "extlink.keras", lambda f: f.__setitem__(
        "leak", h5py.ExternalLink(SECRET, "/"))), "external link"))
    fifo = folder / "fifo.h5"
    os.mkfifo(fifo)
    cases.append(Case("a FIFO", fifo, "FIFO"))
    cases.append(Case("a device", Path("/dev/zero"), "device"))
    (folder / "empty.h5").write_bytes(b"")
    cases.append(Case("empty file", folder / "empty.h5", "neither an HDF5"))
    (folder / "truncated.h5").write_bytes(KERAS_H5.read_bytes()[:3000])
    cases.append(Case("truncated HDF5", folder / "truncated.h5", "truncated.h5"))
    (folder / "model.onnx").write_bytes(KERAS_H5.read_bytes())
    cases.append(Case("HDF5 named .onnx", folder / "model.onnx", "is named .onnx but is a hdf5 file"))
    for name, edit, says in (
        ("no_kernel_size.h5", lambda c: _layer(c, "Conv2D").pop("kernel_size"), "malformed"),
        ("units_inf.h5", lambda c: _layer(c, "Dense").__setitem__("units", float("inf")), "malformed"),
        ("units_float.h5", lambda c: _layer(c, "Dense").__setitem__("units", 16.0), "units=16.0"),
        ("use_bias_yes.h5", lambda c: _layer(c, "Conv2D").__setitem__("use_bias", "yes"), "use_bias='yes'"),
        ("groups_zero.h5", lambda c: _layer(c, "Conv2D").__setitem__("groups", 0), "groups=0"),
        ("rate_text.h5", lambda c: _layer(c, "Dropout").__setitem__("rate", "0.5"), "rate='0.5'"),
        ("pool_zero.h5", lambda c: _layer(c, "MaxPooling2D").__setitem__("pool_size", [0, 0]), "pool"),
        ("config_list.h5", lambda c: c.__setitem__("config", [1, 2]), "config"),
        ("40000_layers.h5", _more_layers(40_000), "at most 1000 layer calls"),
        ("1500_layers.h5", _more_layers(1500), "at most 1000 layer calls"),
        ("input_100000x100000.h5", lambda c: _layer(c, "InputLayer").__setitem__(
            "batch_input_shape", [None, 100_000, 100_000, 3]), "in the file but"),
    ):
        cases.append(Case(name, _copy_h5(folder, name, _config(edit)), says))
    cases.append(Case("a layer that is a 10**9-row dataset", _copy_h5(folder, "dataset_layer.h5", _dataset_layer),
                      "where Keras writes a group"))
    cases.append(Case("a 5000-digit keras_version", _copy_h5(folder, "long_version.h5", lambda f: f.attrs.__setitem__(
        "keras_version", "9" * 5000)), "malformed"))
    cases.append(Case("an encrypted .keras member", _encrypted_keras(folder), "encrypted"))
    onnx_external = _onnx_with_external_data(folder)
    if onnx_external is not None:
        cases.append(Case("ONNX tensor in an external file", onnx_external, "external file"))
    cases.append(Case("model_config an array", _copy_h5(folder, "config_array.h5", lambda f: f.attrs.__setitem__(
        "model_config", np.arange(3))), "config"))
    return cases


def _dataset_layer(f: h5py.File) -> None:
    group, _ = _first_weight(f)
    name = group.name
    del f[name]
    f.create_dataset(name, shape=(10**9,), dtype="u1")  # 1 GB declared, nothing written: iterating it never ends


def _encrypted_keras(folder: Path) -> Path:
    """The .keras fixture with every member flagged encrypted (zipfile then asks for a password); zipfile
    cannot write the flag, so it is set in the bytes of each local and central header."""
    data = bytearray(KERAS_ZIP.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            data[start + flags_at] |= 0x1
            start = data.find(signature, start + 4)
    path = folder / "encrypted.keras"
    path.write_bytes(bytes(data))
    return path


def _onnx_with_external_data(folder: Path) -> Path | None:
    """An ONNX fixture whose first weight claims to live in another file (onnx would read it by that name)."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(FIXTURES / "onnx" / "torch_grouped.onnx"))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", SECRET
    path = folder / "external.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def data_cases(folder: Path, image_shape=(12, 12, 3)) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    h, w, c = image_shape
    cases = []

    def npz(name: str, says: str, **arrays) -> None:
        np.savez(folder / name, **arrays)
        cases.append(Case(name, folder / name, says))

    npz("strings.npz", "type", x=np.array([["a"] * 5] * 40))
    npz("complex.npz", "type", x=np.ones((40, h, w, c), np.complex64))
    npz("zero_height.npz", "empty axis", x=np.zeros((40, 0, w, c), np.float32))
    npz("string_labels.npz", "labels", x=np.zeros((40, h, w, c), np.float32), y=np.array(["cat"] * 40))
    npz("object.npz", "cannot read the data", x=np.array([{"pickled": i} for i in range(40)], dtype=object))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (10**6, h, w, c * 1000)})
    with zipfile.ZipFile(folder / "declares_terabytes.npz", "w") as archive:
        archive.writestr("x.npy", buf.getvalue() + b"\0" * 64)
    cases.append(Case("declares terabytes", folder / "declares_terabytes.npz", "GiB"))
    good = folder / "good.npz"
    np.savez(good, x=np.zeros((40, h, w, c), np.float32))
    (folder / "truncated.npz").write_bytes(good.read_bytes()[:200])
    cases.append(Case("truncated npz", folder / "truncated.npz", "not an .npz archive"))
    (folder / "empty.npz").write_bytes(b"")
    cases.append(Case("empty npz", folder / "empty.npz", "not an .npz archive"))
    fifo = folder / "fifo.npz"
    os.mkfifo(fifo)
    cases.append(Case("a FIFO as data", fifo, "FIFO"))
    with h5py.File(folder / "extstore.h5", "w") as f:
        f.create_dataset("X_test", shape=(40, h, w, c), dtype="u1", external=[(SECRET, 0, h5py.h5f.UNLIMITED)])
    cases.append(Case("data in external storage", folder / "extstore.h5", "other files"))
    bomb = folder / "bomb" / "0"
    bomb.mkdir(parents=True)
    Image.new("L", (8000, 8000)).save(bomb / "a.png")  # 64 Mpixel, a few kB compressed
    cases.append(Case("a decompression bomb", folder / "bomb", "refusing to decode"))
    for name, write, says in (
        ("corrupt_png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "cannot read the data"),
        ("text_as_png", lambda p: p.write_text("not a picture"), "cannot read the data"),
        ("fifo_png", lambda p: os.mkfifo(p), "FIFO"),
    ):
        images = folder / name / "0"
        images.mkdir(parents=True)
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(images / "a.png")
        write(images / "b.png")
        cases.append(Case(name, folder / name, says))
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
    outside = folder / "outside.ppm"  # an image beside the data folders, which an annotation or a link reaches for
    Image.fromarray(np.zeros((35, 35, 3), np.uint8)).save(outside)
    for name, rows, says in (
        ("gt_absolute_filename", f"{header}{outside};35;35;1;1;30;30;3\n", "not a plain file name"),
        ("gt_parent_filename", f"{header}../outside.ppm;35;35;1;1;30;30;3\n", "not a plain file name"),
        ("gt_linked_image", f"{header}linked.ppm;35;35;1;1;30;30;3\n", "outside the data folder"),
        ("gt_missing_columns", "Filename;Width\na.ppm;35\n", "line 2"),
        ("gt_width_zero", f"{header}a.ppm;0;35;1;1;30;30;3\n", "line 2"),
        ("gt_text_roi", f"{header}a.ppm;35;35;x;1;30;30;3\n", "line 2"),
    ):
        gtsrb = folder / name
        gtsrb.mkdir()
        Image.fromarray(np.zeros((35, 35, 3), np.uint8)).save(gtsrb / "a.ppm")
        os.symlink(outside, gtsrb / "linked.ppm")
        (gtsrb / "GT-final_test.csv").write_text(rows)
        cases.append(Case(name, gtsrb, says))
    linked = folder / "linked_class" / "0"
    linked.mkdir(parents=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(linked / "a.png")
    os.symlink(outside, linked / "b.ppm")
    cases.append(Case("a class folder's image linked from outside", folder / "linked_class", "outside the data folder"))
    (folder / "folder_of_links").mkdir()
    os.symlink(linked, folder / "folder_of_links" / "0")
    cases.append(Case("a class folder linked from outside", folder / "folder_of_links", "outside the data folder"))
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile_out")
    for case in model_cases(out / "models") + data_cases(out / "data"):
        print(f"{case.name}: {case.path}")
