"""`python -m ncjax.run`: printed lines, pictures with the reference's names, report.json, exit codes."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import ncjax
import ncjax.cli.scan as run_module
import ncjax.pipeline.model_scan as pipeline_module
from conftest import KERAS_FIXTURES
from ncjax.models.keras import save_keras_h5
from ncjax.run import main

MODEL = KERAS_FIXTURES / "tfkeras" / "sequential.h5"  # 12x12x3 input, 5 classes
SMALL = ["--batch-size", "8", "--nb-sample", "16", "--max-epochs", "10", "--patience", "1",
         "--attack-success-threshold", "0.9", "--no-progress"]
# Labels the fixture's random weights let a trigger reach within SMALL; labels 0 and 4 never win on any input,
# which makes a scan of all five inconclusive (tested below).
REACHABLE = ["--labels", "1,2,3"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "clean.npz"
    np.savez(path, x=np.random.default_rng(0).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32))
    return path


def test_scan_prints_reference_lines_and_writes_outputs(tmp_path, data, capsys):
    out = tmp_path / "out"
    code = main(["--model", str(MODEL), "--data", str(data), "--out", str(out), *REACHABLE, *SMALL])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(re.fullmatch(r"median: \d+\.\d{6}, MAD: \d+\.\d{6}", line) for line in lines)
    assert any(re.fullmatch(r"anomaly index: (\d+\.\d{6}|inf|nan)", line) for line in lines)
    assert any(line.startswith("flagged label list: ") for line in lines)
    assert any(line.startswith("verdict: ") for line in lines)
    for label in (1, 2, 3):
        for kind in ("mask", "pattern", "fusion"):
            assert (out / f"gtsrb_visualize_{kind}_label_{label}.png").exists()
    from PIL import Image

    with Image.open(out / "summary.png") as summary:
        assert summary.size[0] >= 600 and summary.size[1] > 300
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "ncjax.report/1" and len(report["labels"]) == 3
    assert report["config"]["max_epochs"] == 10 and report["config"]["batch_size"] == 8
    # The verdict is the score rule's on the norms the report lists, and the printed lines are its lines.
    from ncjax.verdict.decision import decide

    expected = decide([e["l1_norm_used"] for e in report["labels"]], [e["label"] for e in report["labels"]],
                      reached=[e["reached_threshold"] for e in report["labels"]])
    assert report["verdict"] == expected.status and report["verdict_labels"] == list(expected.labels)
    assert report["mad"]["lines"] == expected.mad.lines()
    first = lines.index(expected.mad.lines()[0])
    assert lines[first:first + 3] == expected.mad.lines()
    assert report["verdict_rule"] == "score" and f"verdict: {expected.line()}" in lines
    # The exact float triggers, for ncjax.mitigate: the norms the report gives, and the verdict's labels.
    triggers = ncjax.load_triggers(out)
    assert triggers.triggers.labels.tolist() == [1, 2, 3] and triggers.verdict == report["verdict"]
    np.testing.assert_allclose(triggers.triggers.norms, [e["l1_norm"] for e in report["labels"]], rtol=1e-5)
    named = tuple(report["verdict_labels"]) if report["verdict"] in ("infected", "suspicious") else ()
    assert triggers.triggers.named == named and triggers.preprocessing == ncjax.Preprocessing()


def test_pictures_are_what_the_reference_mad_script_reads(tmp_path, data):
    from PIL import Image

    out = tmp_path / "out"
    assert main(["--model", str(MODEL), "--data", str(data), "--out", str(out), "--labels", "1,3", *SMALL]) == 0
    report = json.loads((out / "report.json").read_text())
    for entry in report["labels"]:
        mask = np.asarray(Image.open(out / f"gtsrb_visualize_mask_label_{entry['label']}.png"), np.float64) / 255
        assert mask.sum() == pytest.approx(entry["l1_norm_used"], abs=1e-9)  # quantized norms are the PNGs'


def test_exit_codes(tmp_path, data, monkeypatch, capsys):
    assert main(["--model", str(tmp_path / "missing.h5"), "--data", str(data)]) == 2
    assert main(["--model", str(MODEL)]) == 2
    assert main(["--model", str(MODEL), "--data", str(data), "--preprocess", "weird"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("error: ") for line in err) and len(err) == 3
    with pytest.raises(SystemExit) as info:
        main(["--preset", "slow"])
    assert info.value.code == 2

    monkeypatch.setattr(pipeline_module, "l1_norms", lambda masks, quantize: np.array([1.0, 50, 52]))
    args = ["--model", str(MODEL), "--data", str(data), "--out", str(tmp_path / "o"), "--overwrite", *REACHABLE,
            *SMALL]
    assert main(args) == 0
    assert main([*args, "--fail-on-detect"]) == 3
    printed = capsys.readouterr().out
    assert "verdict: INFECTED" in printed
    last = printed.splitlines()[-1]  # what to do next: the pictures, then the repair of this model
    assert last.startswith("next: open ") and f"ncjax mitigate --model {MODEL}" in last and "--out repaired.h5" in last
    # A ratio of 2.5, between the suspicious 2.4 and the infected 2.8: suspicious, which --fail-on-detect passes.
    monkeypatch.setattr(pipeline_module, "l1_norms", lambda masks, quantize: np.array([20.0, 50, 52]))
    assert main([*args, "--fail-on-detect"]) == 0
    printed = capsys.readouterr().out
    assert "verdict: SUSPICIOUS" in printed and "not a finding" in printed.splitlines()[-1]
    assert main([*args, "--fail-on-detect", "--verdict", "reference"]) == 3
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["verdict"] == "infected" and report["verdict_rule"] == "reference" and report["gap"] is None


def test_every_scan_setting_has_a_flag():
    import dataclasses

    from ncjax import ScanConfig

    parser = run_module.build_parser()
    flags = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(ScanConfig)} - {"preprocessing", "search"} <= flags
    assert "search" not in flags  # the command scans triggers; --verdict margin or combined adds the margin search
    args = parser.parse_args(["--preset", "paper", "--no-early-stop", "--upsample", "2", "--preprocess", "0,0.5",
                              "--bgr", "--loss", "crossentropy"])
    config = run_module.config_from_args(args)
    assert not config.early_stop and config.upsample == 2 and config.loss == "crossentropy"
    assert config.preprocessing.scale == 0.5 and config.preprocessing.channel_order == "bgr"
    assert config.nb_sample == 1000  # the paper preset


@pytest.mark.parametrize("flags, expected", [
    (["--preprocess", "-1,0.00784313725490196"], ncjax.Preprocessing(mode="custom", offset=-1,
                                                                      scale=0.00784313725490196)),
    (["--preprocess", "-.5,2", "--bgr"], ncjax.Preprocessing(mode="custom", offset=-0.5, scale=2, channel_order="bgr")),
    (["--preprocess", "mnist", "--bgr"], ncjax.Preprocessing(mode="mnist", channel_order="bgr")),
    (["--mean", "0.4914,0.4822,0.4465", "--std", "0.247,0.243,0.261"],
     ncjax.Preprocessing(mode="normalize", mean=(0.4914, 0.4822, 0.4465), std=(0.247, 0.243, 0.261))),
    ([], ncjax.Preprocessing()),
])
def test_every_input_convention_is_one_or_two_flags(flags, expected):
    args = run_module.build_parser().parse_args(flags)
    assert run_module.config_from_args(args).preprocessing == expected


@pytest.mark.parametrize("flags, match", [
    (["--mean", "0.5"], "mean and std go together"),
    (["--preprocess", "torch", "--mean", "0.5", "--std", "0.2"], "without a preprocessing mode"),
    (["--preprocess", "imagenet", "--bgr"], "BGR channels by definition"),
    (["--preprocess", "-1,x"], "OFFSET,SCALE"),
])
def test_contradictory_preprocessing_flags_are_one_line_errors(flags, match, capsys):
    assert main(["--model", str(MODEL), "--data", "none.npz", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(match, err[0])


def test_zero_to_one_images_for_a_raw_model_get_a_note(tmp_path, capsys):
    path = tmp_path / "unit.npz"
    np.savez(path, x=np.random.default_rng(0).uniform(0, 1, (40, 12, 12, 3)).astype(np.float32))
    main(["--model", str(MODEL), "--data", str(path), "--out", str(tmp_path / "o"), *SMALL])
    out = capsys.readouterr().out
    assert "note: data read as float arrays, taken as the model's inputs" in out
    assert "note: the model's inputs lie in [0, 1] but --preprocess is raw" in out and "--preprocess mnist" in out


def test_interrupt_then_resume_gives_the_uninterrupted_report(tmp_path, data, monkeypatch, capsys):
    args = ["--model", str(MODEL), "--data", str(data), *REACHABLE, *SMALL]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    original = pipeline_module.scan_all_labels

    def interrupted(*a, callback=None, **kw):
        def stop(progress):
            if progress.labels_done >= 2:
                raise KeyboardInterrupt
        return original(*a, callback=stop, **kw)

    monkeypatch.setattr(pipeline_module, "scan_all_labels", interrupted)
    out = tmp_path / "cut"
    assert main([*args, "--out", str(out)]) == 130
    assert "--resume" in capsys.readouterr().err and (out / "scan_state.npz").exists()
    monkeypatch.setattr(pipeline_module, "scan_all_labels", original)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    whole = json.loads((tmp_path / "whole" / "report.json").read_text())
    resumed = json.loads((out / "report.json").read_text())
    assert resumed["labels"] == whole["labels"] and resumed["mad"] == whole["mad"]


def test_an_onnx_model_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("onnx", reason="the ONNX path needs the onnx package: pip install 'onnx>=1.14'")
    data = tmp_path / "clean16.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (40, 16, 16, 3)).astype(np.float32))
    onnx_model = KERAS_FIXTURES.parent / "onnx" / "torch_grouped.onnx"
    out = tmp_path / "out"
    assert main(["--model", str(onnx_model), "--data", str(data), "--out", str(out), "--labels", "0,2", *SMALL]) == 0
    assert "input (16, 16, 3)" in capsys.readouterr().out
    assert (out / "gtsrb_visualize_mask_label_2.png").exists()
    assert main(["--model", str(onnx_model), "--data", str(data), "--layout", "NHWC", "--out", str(out), *SMALL]) == 2
    assert "so 3 channels; the model takes 16" in capsys.readouterr().err  # the wrong layout, caught


@pytest.fixture(scope="module")
def grayscale_model(tmp_path_factory):
    """The reference's network on 28x28x1 images (MNIST-like), random weights, written as a Keras file."""
    import jax
    import jax.numpy as jnp

    from ncjax.lab.inject import ReferenceNet, classifier_from_flax

    params = ReferenceNet(num_classes=10).init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    path = tmp_path_factory.mktemp("gray") / "gray.h5"
    save_keras_h5(classifier_from_flax(params, 10, (28, 28, 1)), path)
    return path


def test_a_grayscale_model_end_to_end(tmp_path, grayscale_model, capsys):
    """(H, W, 1) models: grayscale trigger pictures, summary.png, report.json, resume; images from a folder."""
    from PIL import Image

    folder = tmp_path / "clean"
    rng = np.random.default_rng(0)
    for label in range(3):
        (folder / str(label)).mkdir(parents=True)
        for k in range(8):
            Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8), "L").save(folder / str(label) / f"{k}.png")
    out = tmp_path / "out"
    # Random weights classify no image right under any convention: --force scans them anyway.
    args = ["--model", str(grayscale_model), "--data", str(folder), "--out", str(out), "--labels", "0,4,9", *SMALL]
    assert main(args) == 2
    assert "no input convention makes the model classify" in capsys.readouterr().err
    args.append("--force")
    code = main(args)
    for kind in ("mask", "pattern", "fusion"):
        with Image.open(out / f"gtsrb_visualize_{kind}_label_4.png") as picture:
            assert picture.mode == "L" and picture.size == (28, 28)
    report = json.loads((out / "report.json").read_text())
    assert [e["label"] for e in report["labels"]] == [0, 4, 9] and (out / "summary.png").exists()
    assert code == (4 if report["verdict"] == "inconclusive" else 0)  # random weights: some labels never win
    assert main([*args, "--resume"]) == code
    assert json.loads((out / "report.json").read_text())["labels"] == report["labels"]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("extra, says", [
    (["--labels", "a"], "--labels"), (["--labels", "1,,2"], "--labels"), (["--labels", "1.5"], "--labels"),
    (["--labels", "0 1 2"], "--labels"), (["--labels", "1,1"], "twice"), (["--labels", "7"], "out of range"),
    (["--seed", "99999999999999999999"], "--seed"), (["--seed", "-1"], "--seed"),
    (["--threshold", "nan"], "--threshold"), (["--threshold", "inf"], "--threshold"),
    (["--threshold", "-1"], "--threshold"), (["--min-gap", "0.5"], "--min-gap"),
    (["--prefix", "../x"], "--prefix"), (["--prefix", "/abs/x"], "--prefix"),
    (["--upsample", "1000"], "--upsample"), (["--learning-rate", "nan"], "--learning-rate must be"),
    (["--nb-sample", "4"], "--nb-sample (4) must be at least --batch-size (8)"),
    (["--out", "/proc/ncjax-out"], "cannot write to --out"),
])
def test_bad_command_lines_end_in_one_line_and_exit_2(tmp_path, data, capsys, extra, says):
    code = None
    try:
        code = main(["--model", str(MODEL), "--data", str(data), "--out", str(tmp_path / "o"), *SMALL, *extra])
    except SystemExit as e:  # the parser's own refusals
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert not (tmp_path / "o" / "report.json").exists()


def test_out_that_is_a_file_is_refused_before_scanning(tmp_path, data, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert main(["--model", str(MODEL), "--data", str(data), "--out", str(taken), *SMALL]) == 2
    assert "is a file" in capsys.readouterr().err and taken.read_text() == "mine"


def test_sigterm_leaves_a_resumable_scan(tmp_path, data):
    """What schedulers send: exit 143 with the last finished epoch kept; --resume gives the uninterrupted report."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    args = ["--model", str(MODEL), "--data", str(data), "--batch-size", "8", "--nb-sample", "16", "--max-epochs",
            "300", "--patience", "1", "--attack-success-threshold", "0.9", "--no-early-stop", "--no-progress",
            *REACHABLE]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "cut"
    # -W error::RuntimeWarning: `import ncjax` must not import ncjax.run before runpy runs it.
    proc = subprocess.Popen([sys.executable, "-W", "error::RuntimeWarning", "-m", "ncjax.run", *args, "--out",
                             str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "scan_state.npz").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "--resume" in err and "Traceback" not in err
    assert main([*args, "--out", str(out), "--resume"]) == 0
    whole = json.loads((tmp_path / "whole" / "report.json").read_text())
    assert json.loads((out / "report.json").read_text())["labels"] == whole["labels"]
    assert os.path.exists(out / "scan_state.npz")


def test_labels_no_trigger_reaches_make_the_verdict_inconclusive(tmp_path, data, capsys):
    """Never 'clean': labels 0 and 4 of the fixture cannot be reached, so the norms do not compare (exit 4)."""
    out = tmp_path / "out"
    assert main(["--model", str(MODEL), "--data", str(data), "--out", str(out), *SMALL]) == 4
    assert "verdict: INCONCLUSIVE: 2 of 5 labels (0, 4) never reached" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "inconclusive" and report["verdict_labels"] == [0, 4]
    assert [e["reached_threshold"] for e in report["labels"]] == [False, True, True, True, False]


def test_image_files_are_raw_pixels_and_get_the_models_preprocessing(tmp_path, monkeypatch):
    """A folder of PNGs holds 0..255 pixels; with --preprocess mnist the scan gets them / 255, as the model takes
    them (arrays in .npz files are taken in the model's scale, as the reference takes its datasets)."""
    from PIL import Image

    folder = tmp_path / "clean" / "1"
    folder.mkdir(parents=True)
    for k in range(10):
        Image.fromarray(np.full((12, 12, 3), 200, np.uint8)).save(folder / f"{k}.png")
    seen = []

    def record(model, images, **kwargs):
        seen.append(np.asarray(images))
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline_module, "scan_all_labels", record)
    base = ["--model", str(MODEL), "--data", str(tmp_path / "clean"), *SMALL]
    assert main([*base, "--out", str(tmp_path / "a"), "--preprocess", "mnist"]) == 130
    assert main([*base, "--out", str(tmp_path / "b")]) == 130
    np.testing.assert_allclose(seen[0], 200 / 255, rtol=1e-6)
    np.testing.assert_allclose(seen[1], 200.0)


def test_restarts_and_the_source_check(tmp_path, capsys):
    """--restarts 2 keeps each label's smaller restart; a candidate of the score (a low --min-ratio makes one)
    gets the source-specific check, and report.json keeps every statistic."""
    data = tmp_path / "labelled.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.uniform(0, 255, (40, 12, 12, 3)).astype(np.float32), y=np.arange(40) % 5)
    out = tmp_path / "out"
    code = main(["--model", str(MODEL), "--data", str(data), "--out", str(out), *REACHABLE, *SMALL, "--restarts", "2",
                 "--min-ratio", "1.0001", "--source-check", "2", "--force"])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    restarts = report["restarts"]
    assert restarts["restarts"] == 2 and len(restarts["norms"]) == 3 and all(len(r) == 2 for r in restarts["norms"])
    for entry, norms, chosen in zip(report["labels"], restarts["norms"], restarts["chosen"]):
        reached = [v for v in norms if v is not None]
        if reached:
            assert entry["l1_norm"] == pytest.approx(min(reached), rel=1e-5) and norms[chosen] == min(reached)
    candidates = report["score"]["candidates"]
    assert candidates and "source check: label" in printed
    checks = report["source_check"]
    assert [c["label"] for c in checks] == candidates[:3]
    assert all(len(c["sources"]) == 2 and c["label"] not in c["sources"] for c in checks)
    assert all(c["set_aside"] == (c["spread"] is None or c["spread"] > report["max_spread"]) for c in checks)
    natural = {c["label"] for c in checks if c["set_aside"]}
    kept = set(candidates) if natural >= set(candidates) else set(candidates) - natural
    assert set(report["verdict_labels"]) == kept


def test_the_pair_scan_from_the_command_line(tmp_path, data, capsys):
    labelled = tmp_path / "labelled.npz"
    np.savez(labelled, x=np.random.default_rng(0).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32),
             y=np.arange(40) % 5)
    args = ["--model", str(MODEL), *REACHABLE, *SMALL, "--source-check", "0", "--force"]
    assert main([*args, "--data", str(labelled), "--out", str(tmp_path / "a"), "--pair-epochs", "2",
                 "--pairs", "auto"]) == 0
    printed = capsys.readouterr().out
    assert "pair scan: 20 (source, target) pairs of 5 classes" in printed
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["pairs"]["classes"] == [0, 1, 2, 3, 4] and max(map(max, report["pairs"]["epochs"])) <= 2
    # Asked for without labels: refused before any scanning, in one line.
    assert main([*args, "--data", str(data), "--out", str(tmp_path / "b"), "--pairs", "on"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pairs" in err[0] and not (tmp_path / "b" / "scan_state.npz").exists()


def test_no_source_check_without_labels_or_when_off(tmp_path, data, capsys):
    args = ["--model", str(MODEL), "--data", str(data), *REACHABLE, *SMALL, "--min-ratio", "1.0001"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "carry no labels" in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "report.json").read_text())["source_check"] == []
    assert main([*args, "--out", str(tmp_path / "b"), "--source-check", "0"]) == 0
    assert "source check" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--source-check", "-1"])


def test_an_interrupted_source_check_resumes(tmp_path, monkeypatch, capsys):
    data = tmp_path / "labelled.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32),
             y=np.arange(40) % 5)
    args = ["--model", str(MODEL), "--data", str(data), "--out", str(tmp_path / "out"), *REACHABLE, *SMALL,
            "--min-ratio", "1.0001", "--source-check", "2", "--force"]
    real_check = pipeline_module.check_candidates

    def interrupted(*a, callback=None, **k):
        def stop(progress):
            raise KeyboardInterrupt
        return real_check(*a, callback=stop, **k)

    monkeypatch.setattr(pipeline_module, "check_candidates", interrupted)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "source check in" in err and "--resume" in err
    monkeypatch.setattr(pipeline_module, "check_candidates", real_check)
    assert main([*args, "--resume"]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["source_check"]


def test_the_focused_preset_prints_its_focus_and_reports_it(tmp_path, data, capsys):
    out = tmp_path / "out"
    code = main(["--model", str(MODEL), "--data", str(data), "--out", str(out), *REACHABLE, *SMALL, "--preset",
                 "focused", "--warmup-epochs", "6", "--candidates", "1", "--anchors", "1", "--source-check", "0",
                 "--attack-success-threshold", "0.6"])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    focus = report["focus"]
    assert report["config"]["warmup_epochs"] == 6 and report["config"]["restarts"] == 2  # the preset's starts
    assert sorted(row["role"] for row in focus["labels"]) == ["anchor", "candidate", "frozen"]
    lines = printed.splitlines()
    assert focus["line"] in lines  # printed when the search ends, before the verdict's lines
    assert lines.index(focus["line"]) < next(i for i, line in enumerate(lines) if line.startswith("median: "))
    frozen = next(row for row in focus["labels"] if row["role"] == "frozen")
    assert frozen["epochs"] == 6


def test_a_used_out_is_refused_unless_overwritten_and_the_report_records_the_run(tmp_path, data, capsys):
    import hashlib

    out = tmp_path / "out"
    args = ["--model", str(MODEL), "--data", str(data), "--out", str(out), *SMALL]
    assert main([*args, "--labels", "1,2,3", "--seed", "5"]) == 0
    (out / "notes.txt").write_text("mine")  # not a scan's file: never touched
    capsys.readouterr()
    assert main([*args, "--labels", "1,2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another scan's files" in err[0] and "--overwrite" in err[0]
    assert json.loads((out / "report.json").read_text())["run"]["seed"] == 5  # the first scan, untouched
    assert main([*args, "--labels", "1,2", "--overwrite"]) == 0
    assert not (out / "gtsrb_visualize_mask_label_3.png").exists()  # no stale picture of the first scan
    assert (out / "gtsrb_visualize_mask_label_2.png").exists() and (out / "notes.txt").read_text() == "mine"
    run = json.loads((out / "report.json").read_text())["run"]
    assert run["seed"] == 0 and run["preset"] == "focused" and run["data_key"] is None
    assert run["model_sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert run["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert run["command"] == ["python", "-m", "ncjax.run", *args, "--labels", "1,2", "--overwrite"]
    assert len(run["images_sha256"]) == 64 and run["labels_sha256"] is None


def test_a_weights_only_keras_file_scans_with_its_architecture(tmp_path, data, capsys):
    weights, architecture = KERAS_FIXTURES / "tfkeras" / "nested_weights.h5", KERAS_FIXTURES / "tfkeras" / "nested.json"
    args = ["--model", str(weights), "--data", str(data), "--out", str(tmp_path / "o"), *SMALL, "--max-epochs", "1",
            "--labels", "0", "--source-check", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds weights only" in err[0] and "--architecture model.json" in err[0]
    assert main([*args, "--architecture", str(architecture)]) in (0, 4)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [row["label"] for row in report["labels"]] == [0]


def test_the_progress_bar_says_the_epoch_and_how_many_labels_search_and_are_done(capsys):
    from ncjax.scan.result import ScanProgress

    progress = run_module._Progress(30, enabled=True)
    progress.update(ScanProgress(epoch=12, labels_done=0, labels_total=43, active_labels=tuple(range(43)),
                                 elapsed_s=1.0))
    assert progress.bar.desc.startswith("epoch 12/30: 43 labels searching, 0/43 done")
    progress.update(ScanProgress(epoch=20, labels_done=40, labels_total=43, active_labels=(3, 7, 33), elapsed_s=2.0))
    assert progress.bar.desc.startswith("epoch 20/30: 3 labels searching, 40/43 done")
    progress.close()
    assert "epoch 20/30" in capsys.readouterr().err


def _pixel_files(tmp_path, pixels: np.ndarray, form: str):
    """`pixels` (N, H, W, 3) uint8 saved as a user would hand them: an (N, H, W, C) or (N, C, H, W) uint8 npz, or a
    flat folder of PNGs."""
    if form == "folder":
        folder = tmp_path / "pngs"
        folder.mkdir()
        from PIL import Image

        for i, image in enumerate(pixels):
            Image.fromarray(image, "RGB").save(folder / f"{i:03d}.png")
        return folder
    path = tmp_path / f"{form}.npz"
    np.savez(path, x=pixels.transpose(0, 3, 1, 2) if form == "nchw" else pixels)
    return path


@pytest.mark.parametrize("flags, form", [
    (["--preprocess", "mnist"], "nhwc"), (["--preprocess", "-1,0.00784313725490196"], "nhwc"),
    (["--preprocess", "inception"], "nchw"), (["--mean", "0.4914,0.4822,0.4465", "--std", "0.247,0.243,0.261"], "nhwc"),
    (["--preprocess", "mnist", "--bgr"], "folder"),
])
def test_pixels_in_any_layout_reach_the_scan_as_the_same_images_in_the_models_scale(tmp_path, flags, form):
    """The done-when list: each convention's raw pixels, in each layout, are handed to the scan as the model-scale
    array would be (the scan is a function of those images, its settings and the key)."""
    pixels = np.random.default_rng(0).integers(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    args = run_module.build_parser().parse_args(["--model", str(MODEL), "--data",
                                                 str(_pixel_files(tmp_path, pixels, form)), *flags])
    config = run_module.config_from_args(args)
    inputs = run_module._inputs(args, config)
    expected = np.asarray(config.preprocessing.to_model(pixels.astype(np.float32)))
    assert inputs.from_pixels and inputs.preprocessing == config.preprocessing
    np.testing.assert_allclose(inputs.images, expected, rtol=1e-6, atol=1e-6)


def test_pixels_and_their_model_scale_array_give_the_same_scan(tmp_path, capsys):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    flags = ["--preprocess", "inception"]
    preprocessing = run_module.preprocessing_flag(run_module.build_parser().parse_args(flags))
    model_scale = tmp_path / "model_scale.npz"
    np.savez(model_scale, x=np.asarray(preprocessing.to_model(pixels.astype(np.float32)), np.float32))
    common = ["--model", str(MODEL), *SMALL, *REACHABLE, "--max-epochs", "3", *flags]
    reports = []
    for name, data in (("a", model_scale), ("b", _pixel_files(tmp_path, pixels, "nchw"))):
        main([*common, "--data", str(data), "--out", str(tmp_path / name)])
        reports.append(json.loads((tmp_path / name / "report.json").read_text()))
    assert "raw 0..255 pixels, put through --preprocess inception" in capsys.readouterr().out
    norms = [[row["l1_norm"] for row in report["labels"]] for report in reports]
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-3)
    assert reports[0]["verdict"] == reports[1]["verdict"]


def test_the_combined_verdict_runs_the_margin_search_and_prints_what_it_read(tmp_path, data, capsys):
    out = tmp_path / "out"
    code = main(["--model", str(MODEL), "--data", str(data), "--out", str(out), *REACHABLE, *SMALL,
                 "--verdict", "combined", "--max-p", "0.01"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("margin search: every label's largest logit margin, 4 random starts") for line in lines)
    report = json.loads((out / "report.json").read_text())
    assert report["verdict_rule"] == "combined" and report["margins"]["labels"] == [1, 2, 3]
    assert report["margins"]["max_p"] == 0.01 and "maximum margin: only 3 label(s)" in report["verdict_line"]
    with pytest.raises(SystemExit) as refused:
        main(["--model", str(MODEL), "--data", str(data), "--out", str(tmp_path / "o"), "--max-p", "1"])
    assert refused.value.code == 2 and "--max-p" in capsys.readouterr().err


def test_a_full_disk_while_checkpointing_ends_in_one_line_and_the_scan_resumes(tmp_path, data, monkeypatch, capsys):
    import errno

    import ncjax.scan.checkpoint as checkpoint_module

    args = ["--model", str(MODEL), "--data", str(data), "--out", str(tmp_path / "out"), *REACHABLE, *SMALL,
            "--source-check", "0"]
    assert main([*args[:5], str(tmp_path / "whole"), *args[6:]]) == 0
    whole = json.loads((tmp_path / "whole" / "report.json").read_text())
    real_write, calls = checkpoint_module.write_npz_atomic, []

    def fill_up(path, **arrays):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, **arrays)

    monkeypatch.setattr(checkpoint_module, "write_npz_atomic", fill_up)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "--resume" in err[0]
    monkeypatch.setattr(checkpoint_module, "write_npz_atomic", real_write)
    assert main([*args, "--resume"]) == 0
    resumed = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [e["l1_norm"] for e in resumed["labels"]] == [e["l1_norm"] for e in whole["labels"]]


@pytest.mark.parametrize("name", ["triggers.npz", "report.json", "summary.png"])
def test_a_full_disk_while_writing_an_output_keeps_the_one_before_and_the_rerun_writes_it(tmp_path, data, name,
                                                                                         monkeypatch, capsys):
    from hostile.faults import fill_disk_at

    out = tmp_path / "out"
    args = ["--model", str(MODEL), "--data", str(data), "--out", str(out), *REACHABLE, *SMALL, "--source-check", "0"]
    assert main(args) == 0
    before = (out / name).read_bytes()
    capsys.readouterr()
    refused = fill_disk_at(monkeypatch, name)
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert refused and len(err) == 1 and "No space left on device" in err[0] and "--resume" in err[0], err
    assert (out / name).read_bytes() == before and not list(out.glob("*.tmp"))
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0
    assert (out / name).read_bytes() == before or name == "report.json"  # the report records its own run
