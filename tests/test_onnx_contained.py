"""An ONNX file reads nothing but itself: a tensor whose data it says is in another file, wherever that tensor sits
and wherever the path points, is refused in one line before anything is opened.

Every location named by the bent files is a FIFO (tests/hostile/onnx_external.py): a process that opens one blocks
until the time limit fails the test, so passing proves no reader followed the path."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import ncjax
from hostile.checks import CANARY, canary_forms, refused, time_limit
from hostile.onnx_external import CARRIERS, RELATIVE, external_case, sentinel_tree
from ncjax.auditing.cli import main as audit_main
from ncjax.inspect import main as inspect_main
from ncjax.mitigation.cli import main as mitigate_main
from ncjax.run import main as run_main

pytest.importorskip("onnx", reason="the ONNX path needs the onnx package: pip install 'onnx>=1.14'")

SMALL = ["--batch-size", "8", "--nb-sample", "16", "--max-epochs", "2", "--patience", "1", "--no-progress"]
# How the one-line refusal names where the tensor sits, per carrier.
PLACES = {"initializer": ": initializer 'leak' keeps", "sparse initializer": ": sparse initializer 0 keeps",
          "Constant value": ": node 'leak_constant' > attribute 'value' keeps",
          "Constant sparse_value": ": node 'leak_constant' > attribute 'sparse_value' keeps",
          "tensor attribute": "node 'carrier' > attribute 't' keeps",
          "tensors attribute": "node 'carrier' > attribute 'ts' > tensor 1 keeps",
          "sparse tensor attribute": "node 'carrier' > attribute 'st' keeps",
          "subgraph": "node 'if_0' > attribute 'then_branch' > node 'leak_constant' > attribute 'value' keeps",
          "subgraph at depth 3": "node 'if_2' > attribute 'then_branch' > node 'if_1' > attribute 'then_branch' > "
                                 "node 'if_0' > attribute 'then_branch' > node 'leak_constant' > attribute 'value' "
                                 "keeps",
          "function body": "function 'Leak' > node 'leak_constant' > attribute 'value' keeps",
          "training graph": "training info 0 > initialization > initializer 'leak' keeps"}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """The folder the commands run from, FIFOs at every location the bent files name."""
    models, locations = sentinel_tree(tmp_path / "home")
    monkeypatch.chdir(models)
    data = tmp_path / "clean.npz"
    np.savez(data, x=np.zeros((40, 16, 16, 3), np.float32), y=np.arange(40) % 5)
    return models, locations, data


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_tensor_anywhere_that_points_at_another_file_is_refused_unread(tree, carrier, capsys):
    models, _, _ = tree
    path = external_case(models, carrier, RELATIVE)
    line = refused(capsys, lambda: inspect_main([str(path)]), f"keeps its data in the external file '{RELATIVE}'")
    assert PLACES[carrier] in line and "save_as_external_data=False" in line
    with time_limit(), pytest.raises(ncjax.ModelFileError, match="reads nothing but the model file"):
        ncjax.load_model(path)


@pytest.mark.parametrize("which", ["relative", "parent", "through a symlinked folder", "absolute"])
def test_every_kind_of_path_is_refused_unread_by_every_command(tree, which, capsys, tmp_path):
    models, locations, data = tree
    location = locations[["relative", "parent", "through a symlinked folder", "absolute"].index(which)]
    for carrier in ("Constant value", "subgraph at depth 3", "initializer"):
        path = external_case(models, carrier, location)
        says = "keeps its data in the external file"
        refused(capsys, lambda path=path: inspect_main([str(path)]), says)
        refused(capsys, lambda path=path: run_main(["--model", str(path), "--data", str(data), "--out",
                                                    str(tmp_path / "o"), *SMALL]), says)
        refused(capsys, lambda path=path: mitigate_main(["--model", str(path), "--data", str(data), "--scan",
                                               str(tmp_path / "o"), "--out", str(tmp_path / "fixed.onnx")]), says)
    assert not (tmp_path / "o" / "report.json").exists() and not (tmp_path / "fixed.onnx").exists()


def test_an_audit_keeps_the_refusal_as_one_row_and_opens_nothing(tree, tmp_path, capsys):
    models, locations, data = tree
    paths = [external_case(models, "Constant value", location) for location in locations]
    out = tmp_path / "audit"
    with time_limit():
        code = audit_main([*map(str, paths), "--data", str(data), "--out", str(out), "--no-progress", *SMALL])
    assert code == 1
    rows = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["status"] == "error" and "external file" in r["error"] for r in rows)
    printed = capsys.readouterr().out.splitlines()
    assert sum("external file" in line for line in printed) == 4



def _atime_moves_on_read(folder) -> bool:
    """Whether this filesystem records reads (relatime does when atime is older than mtime; noatime never)."""
    probe = folder / "atime_probe"
    probe.write_bytes(b"probe")
    os.utime(probe, (1_000_000, 2_000_000))
    probe.read_bytes()
    return probe.stat().st_atime != 1_000_000


@pytest.mark.parametrize("carrier", ["Constant value", "initializer", "tensor attribute"])
def test_a_secret_at_the_path_is_neither_read_nor_printed(tmp_path, monkeypatch, capsys, carrier):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    secret = home / RELATIVE
    secret.write_bytes(CANARY * 4)
    os.utime(secret, (1_000_000, 2_000_000))  # atime before mtime: a read would move it
    monkeypatch.chdir(home)
    path = external_case(home, carrier, RELATIVE)
    line = refused(capsys, lambda: inspect_main([str(path)]), "external file")
    assert not any(form in line for form in canary_forms())
    if _atime_moves_on_read(tmp_path):
        assert secret.stat().st_atime == 1_000_000, "the secret file was read"
