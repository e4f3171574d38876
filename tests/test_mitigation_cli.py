"""`python -m ncjax.mitigate`: from a scan's triggers.npz to a repaired model file and its report."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import ncjax
from ncjax.lab import Backdoor
from ncjax.mitigation.cli import main
from ncjax.pipeline.report import run_record
from ncjax.pipeline.triggers import TRIGGERS_FILE

QUICK = ["--min-steps", "30"]


@pytest.fixture
def setup(demo_backdoor, tmp_path):
    """A scan folder whose triggers.npz names 33 (the demo's true trigger stands for the reversed one), the
    demo's images as an .npz, and the true trigger as two pictures."""
    from ncjax import demo

    model, images, labels, square = demo_backdoor
    scan = tmp_path / "scan"
    scan.mkdir()
    corner = Backdoor.square(4, target=5, position="top-left")
    triggers = ncjax.TriggerSet([5, 33], np.stack([corner.mask, square.masks[0]]),
                                np.stack([corner.pattern, square.patterns[0]]), named=(33,))
    triggers.save(scan / TRIGGERS_FILE, preprocessing=ncjax.Preprocessing(), verdict="infected")
    np.savez(tmp_path / "clean.npz", x=images, y=labels)
    Image.fromarray((square.masks[0] * 255).astype(np.uint8), "L").save(tmp_path / "mask.png")
    Image.fromarray(square.patterns[0].astype(np.uint8), "RGB").save(tmp_path / "pattern.png")
    return {"model": str(demo.demo_model_path()), "data": str(tmp_path / "clean.npz"), "scan": str(scan),
            "true": f"{tmp_path}/mask.png,{tmp_path}/pattern.png", "dir": tmp_path}


def _args(setup, *extra):
    return ["--model", setup["model"], "--data", setup["data"], "--scan", setup["scan"], *extra]


def test_unlearning_writes_a_repaired_keras_file_and_a_report(setup, capsys):
    out = setup["dir"] / "repaired.h5"
    code = main(_args(setup, "--out", str(out), "--true-trigger", setup["true"], *QUICK))
    assert code == 0
    printed = capsys.readouterr().out
    assert "attack success of the reversed trigger of 33:" in printed and "of the true trigger of 33" in printed
    report = json.loads((setup["dir"] / "repaired.report.json").read_text())
    assert report["labels"] == [33]  # the label the verdict named, not 5
    assert report["before"]["true_attack_success"]["33"] > 0.9 > 0.1 > report["after"]["true_attack_success"]["33"]
    assert report["read_back"]["max_logit_difference"] < 1e-4
    assert ncjax.load_model(out).num_classes == 43


def test_prune_and_filter_from_the_command_line(setup, capsys):
    code = main(_args(setup, "--labels", "33", "--method", "prune", "--prune-step", "0.1", "--out",
                      str(setup["dir"] / "pruned.h5")))
    assert code == 0 and "neurons of dense" in capsys.readouterr().out
    report = json.loads((setup["dir"] / "pruned.report.json").read_text())
    assert report["prune"]["steps"][0]["pruned"] == 0 and report["prune"]["layer"] == "dense"
    code = main(_args(setup, "--method", "filter", "--out", str(setup["dir"] / "filter.npz"),
                      "--report", str(setup["dir"] / "f.json")))
    assert code == 0 and "filter: 5 neuron(s) per trigger" in capsys.readouterr().out
    assert (setup["dir"] / "filter.npz").exists() and json.loads((setup["dir"] / "f.json").read_text())["filter"]


@pytest.mark.parametrize("extra, says", [
    (["--out", "x.onnx"], "Keras model is written as a .h5"),
    (["--out", "x.h5", "--method", "filter"], "filter is written as a .npz"),
    (["--out", "x.h5", "--labels", "7"], r"no trigger for label\(s\) \[7\]"),
    (["--out", "x.h5", "--true-target", "3"], "--true-target goes with --true-trigger"),
    (["--out", "x.h5", "--layer", "flatten", "--method", "prune"], "choose one of"),
    (["--out", "x.h5", "--layer", "dense"], "unlearning fine-tunes every layer"),
    (["--out", "x.h5", "--holdout-share", "1"], "--holdout-share must be"),
])
def test_bad_command_lines_end_in_one_line_and_exit_2(setup, capsys, monkeypatch, extra, says):
    monkeypatch.chdir(setup["dir"])
    code = main(_args(setup, *extra))
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert re.search(says, err), err


def test_a_scan_that_named_nothing_asks_for_labels(setup, capsys, tmp_path):
    loaded = ncjax.load_triggers(setup["scan"]).triggers
    clean = tmp_path / "clean_scan"
    clean.mkdir()
    ncjax.TriggerSet(loaded.labels, loaded.masks, loaded.patterns).save(clean / TRIGGERS_FILE, verdict="clean")
    code = main(["--model", setup["model"], "--data", setup["data"], "--scan", str(clean), "--out",
                 str(tmp_path / "x.h5")])
    assert code == 2 and "--labels" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "ncjax.mitigate", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--stamped-share" in done.stdout and "--true-trigger" in done.stdout


def test_an_onnx_model_is_repaired_into_an_onnx_file(tmp_path, capsys):
    pytest.importorskip("onnx")
    from conftest import ROOT

    source = ROOT / "tests" / "fixtures" / "onnx" / "dynamo_flatten.onnx"
    model = ncjax.load_model(source)
    images = np.random.default_rng(0).uniform(0, 255, (60, 16, 16, 3)).astype(np.float32)
    labels = np.asarray(model(images)).argmax(axis=1)
    labels[:3] = np.arange(3)
    np.savez(tmp_path / "clean.npz", x=images, y=labels)
    corner = Backdoor.square(3, target=1, image_shape=(16, 16, 3))
    (tmp_path / "scan").mkdir()
    ncjax.TriggerSet([1], corner.mask[None], corner.pattern[None], named=(1,)).save(tmp_path / "scan" / TRIGGERS_FILE)
    code = main(["--model", str(source), "--data", str(tmp_path / "clean.npz"), "--scan", str(tmp_path / "scan"),
                 "--out", str(tmp_path / "repaired.onnx"), "--min-steps", "4", "--batch-size", "10", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "repaired.report.json").read_text())
    assert report["read_back"]["max_logit_difference"] < 1e-4 and report["unlearn"]["steps"] >= 4
    assert ncjax.load_model(tmp_path / "repaired.onnx").format == "onnx"


def test_the_model_is_never_written_over_and_a_scan_of_another_model_is_refused(setup, tmp_path, capsys):
    import shutil

    from ncjax import demo

    model = tmp_path / "model.h5"
    shutil.copyfile(setup["model"], model)
    args = ["--model", str(model), "--data", setup["data"], "--scan", setup["scan"]]
    assert main([*args, "--out", str(model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the model itself" in err[0]
    # The scan's report.json records another file's digest (the clean twin's): refused before any work.
    other = run_record(seed=0, preset="fast", model_path=demo.demo_model_path(infected=False))
    (tmp_path / "scan" / "report.json").write_text(json.dumps({"run": other}))
    assert main([*args, "--out", str(tmp_path / "repaired.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a scan of another model file" in err[0] and "--force" in err[0]
    assert not (tmp_path / "repaired.h5").exists()


@pytest.mark.parametrize("name", ["pruned.h5", "pruned.report.json"])
def test_a_full_disk_while_writing_the_repaired_model_or_its_report_ends_in_one_line(setup, capsys, monkeypatch,
                                                                                    name):
    from hostile.faults import fill_disk_at

    refused = fill_disk_at(monkeypatch, name)
    code = main(_args(setup, "--labels", "33", "--method", "prune", "--prune-step", "0.5", "--out",
                      str(setup["dir"] / "pruned.h5"), "--no-progress"))
    err = capsys.readouterr().err.strip().splitlines()
    assert refused and code == 2 and len(err) == 1 and "No space left on device" in err[0], err
    assert not (setup["dir"] / name).exists() and not list(setup["dir"].glob("*.tmp"))
