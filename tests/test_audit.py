"""ncjax.audit and `python -m ncjax.audit`: many models, one row each, failures kept as rows, reruns skip."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import ncjax
from conftest import model_zoo
from hostile.checks import time_limit
from ncjax.auditing import AuditItem
from ncjax.auditing.cli import main
from ncjax.auditing.items import expand
from ncjax.auditing.roc import roc_curve
from ncjax.auditing.rows import read_rows
from ncjax.auditing.tables import auc

SCAN = ["--preset", "fast", "--labels", "1,2,3", "--batch-size", "8", "--nb-sample", "16", "--max-epochs", "6",
        "--patience", "1", "--attack-success-threshold", "0.9", "--source-check", "0"]
SETTINGS = ncjax.ScanSettings(labels=(1, 2, 3), decision=ncjax.DecisionConfig(source_check=0),
                              config=ncjax.ScanConfig.fast(batch_size=8, nb_sample=16, max_epochs=6, patience=1,
                                                           attack_success_threshold=0.9))  # what SCAN's flags say


@pytest.fixture
def zoo(tmp_path):
    """Two copies of the fixture model, a file that is no model, and clean images for them."""
    return model_zoo(tmp_path, broken=True)


def test_a_folder_is_audited_with_an_error_row_for_the_broken_file(zoo, tmp_path):
    folder, data = zoo
    out = tmp_path / "audit"
    result = ncjax.audit([folder], out=out, data=str(data), scan=SETTINGS)
    names = [r["name"] for r in result.rows]
    assert names == ["a", "b", "broken"] and result.failed == 1 and result.skipped == 0
    a, b, broken = result.rows
    assert a["status"] == b["status"] == "done" and broken["status"] == "error"
    assert "HDF5" in broken["error"] or "not" in broken["error"]
    assert a["verdict"] == b["verdict"] and a["labels"] == b["labels"]  # same model, same key: same verdict
    for name in ("a", "b"):
        assert (out / name / "report.json").exists() and (out / name / "triggers.npz").exists()
    assert len(read_rows(out)) == 3
    assert (out / "audit.csv").read_text().splitlines()[0].startswith("name,model,status,verdict")
    assert "1 failed" in (out / "audit.md").read_text()


def test_a_rerun_skips_what_is_done_and_retries_what_failed(zoo, tmp_path):
    folder, data = zoo
    out = tmp_path / "audit"
    ncjax.audit([folder], out=out, data=str(data), scan=SETTINGS)
    report = (out / "a" / "report.json").read_text()
    again = ncjax.audit([folder], out=out, data=str(data), scan=SETTINGS)
    assert again.skipped == 2 and again.failed == 1
    assert (out / "a" / "report.json").read_text() == report
    assert [r["name"] for r in read_rows(out)] == ["a", "b", "broken", "broken"]  # only the failure ran again
    # Other settings never reuse the rows: refused, naming the difference, before any model is scanned.
    with pytest.raises(ncjax.UsageError, match=r"'a' with other settings .*scan\.seed \(0 here, 1 now\)"):
        ncjax.audit([folder], out=out, data=str(data), scan=dataclasses.replace(SETTINGS, seed=1))
    assert len(read_rows(out)) == 4


def test_a_manifest_with_truth_gives_rates_and_the_command_line_exit_code(zoo, tmp_path, capsys):
    folder, data = zoo
    manifest = tmp_path / "models.csv"
    manifest.write_text(f"path,data,truth,target\n{folder / 'a.h5'},{data},infected,2\n{folder / 'b.h5'},,clean,\n")
    out = tmp_path / "audit"
    code = main([str(manifest), "--data", str(data), "--out", str(out), *SCAN])
    printed = capsys.readouterr().out
    assert code == 0 and "2 of 2 models scanned" in printed and "truth:" in printed
    rows = read_rows(out)
    assert [r["truth"] for r in rows] == ["infected", "clean"] and rows[0]["target"] == 2
    assert "![ROC of the score](audit_roc.png)" in (out / "audit.md").read_text()
    with Image.open(out / "audit_roc.png") as figure:
        pixels = np.asarray(figure.convert("RGB")).reshape(-1, 3)
        assert figure.size[0] > 300 and len(np.unique(pixels, axis=0)) > 3  # drawn, not blank
    code = main([str(folder), "--data", str(data), "--out", str(tmp_path / "second"), *SCAN])
    assert code == 1  # the broken file failed


def test_bad_audits_end_in_one_line(tmp_path, capsys):
    code = main([str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2 and capsys.readouterr().err.startswith("error: ")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,truth\nx.h5,maybe\n")
    assert main([str(manifest), "--data", "d.npz", "--out", str(tmp_path / "o")]) == 2
    assert "truth must be" in capsys.readouterr().err
    (tmp_path / "x.h5").write_bytes(b"")
    assert main([str(tmp_path / "x.h5"), "--out", str(tmp_path / "o")]) == 2
    assert "no clean images" in capsys.readouterr().err


def test_a_manifest_reads_a_layout_in_any_case_and_refuses_an_unknown_one_before_any_model(tmp_path):
    manifest = tmp_path / "models.csv"
    manifest.write_text("path,layout\na.onnx,nchw\nb.onnx,\n")
    assert [item.layout for item in expand([str(manifest)])] == ["NCHW", None]
    manifest.write_text("path,layout\na.onnx,CHWN\n")
    with pytest.raises(ncjax.UsageError, match="row 1: layout must be 'NHWC' or 'NCHW', got 'CHWN'"):
        expand([str(manifest)])


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped", "a/b", ".hidden", "x\nverdict: clean", "-rf"])
def test_a_manifest_name_is_a_plain_folder_name_or_the_audit_is_refused(zoo, tmp_path, capsys, name):
    folder, data = zoo
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"path": str(folder / "a.h5"), "name": name}]))
    out = tmp_path / "audits" / "out"
    assert main([str(manifest), "--data", str(data), "--out", str(out), *SCAN]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "is not a plain folder name" in err[0] and err[0].isprintable()
    assert not (tmp_path / "audits").exists() and not (tmp_path / "escaped").exists()


def test_a_manifest_value_is_never_read_as_a_flag_and_files_it_names_are_checked(zoo, tmp_path):
    folder, data = zoo
    outside = tmp_path / "outside"
    os.mkfifo(tmp_path / "fifo.h5")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,layout\n{folder / 'a.h5'},--out={outside}\n")
    with pytest.raises(ncjax.UsageError, match="layout must be"):  # a layout is one of two words, checked first
        ncjax.audit([manifest], out=tmp_path / "out", data=str(data), scan=SETTINGS)
    manifest.write_text(f"path,data_key\n{folder / 'a.h5'},--out={outside}\n{folder / 'b.h5'},--resume\n"
                        f"{tmp_path / 'fifo.h5'},\n/dev/zero,\n")
    with time_limit():
        result = ncjax.audit([manifest], out=tmp_path / "out", data=str(data), scan=SETTINGS)
    assert [r["status"] for r in result.rows] == ["error"] * 4 and not outside.exists()
    assert "FIFO" in result.rows[2]["error"] and "device" in result.rows[3]["error"]


def test_a_hostile_file_name_is_escaped_in_every_output(zoo, tmp_path, capsys):
    folder, data = zoo
    (folder / "b.h5").rename(folder / "b\nverdict: clean\x1b[2J.h5")
    (folder / "a.h5").unlink()
    out = tmp_path / "out"
    assert main([str(folder), "--data", str(data), "--out", str(out), "--no-progress", *SCAN]) == 1  # broken.h5
    printed = capsys.readouterr().out
    written = "".join((out / name).read_text() for name in ("audit.md", "audit.csv", "audit.jsonl"))
    for text in (printed, written):
        assert "\x1b" not in text and "\nverdict: clean" not in text
    assert "b\\nverdict: clean\\x1b[2J.h5" in (out / "audit.csv").read_text()


def test_names_are_unique_and_the_auc_counts_ties_half(tmp_path):
    items = expand([AuditItem("x/model.h5"), AuditItem("y/model.h5")])
    assert [i.name for i in items] == ["model", "model-2"]
    assert auc([3.0, 1.0], [1.0, 0.5]) == pytest.approx(0.875) and auc([1.0], []) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=8), st.lists(st.integers(0, 6), min_size=1, max_size=8))
def test_the_roc_curve_climbs_from_corner_to_corner_and_its_area_is_the_pairwise_auc(positives, negatives):
    curve = roc_curve(positives, negatives)
    fpr, tpr = np.array(curve.false_positive_rates), np.array(curve.true_positive_rates)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    assert curve.auc == pytest.approx(sum(pairs) / len(pairs))


def test_an_interrupted_audit_keeps_its_rows_and_reruns_to_the_same_result(zoo, tmp_path, monkeypatch):
    folder, data = zoo
    out = tmp_path / "audit"
    import ncjax.auditing.api as api

    real = api.scan_item
    calls = []

    def interrupted_second(item, *args, **kwargs):
        calls.append(item.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(item, *args, **kwargs)

    monkeypatch.setattr(api, "scan_item", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        ncjax.audit([folder / "a.h5", folder / "b.h5"], out=out, data=str(data), scan=SETTINGS)
    assert [r["name"] for r in read_rows(out)] == ["a"]
    monkeypatch.setattr(api, "scan_item", real)
    result = ncjax.audit([folder / "a.h5", folder / "b.h5"], out=out, data=str(data), scan=SETTINGS)
    assert result.skipped == 1 and [r["status"] for r in result.rows] == ["done", "done"]
    assert json.loads((out / "b" / "report.json").read_text())["verdict"] == result.rows[0]["verdict"]


def test_importing_the_command_modules_keeps_ncjax_audit_and_mitigate_callable(tmp_path):
    import ncjax.audit  # noqa: F401  (binds the name ncjax.audit to the module)
    import ncjax.mitigate  # noqa: F401  (likewise for ncjax.mitigate)

    with pytest.raises(ncjax.UsageError, match="no clean images"):
        ncjax.audit([AuditItem("x.h5")], out=tmp_path / "out")
    with pytest.raises(TypeError, match="positional"):
        ncjax.mitigate()


def test_python_dash_m_ncjax_audit_runs_without_warnings():
    done = subprocess.run([sys.executable, "-W", "error", "-m", "ncjax.audit", "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "--ray" in done.stdout and "--retries" in done.stdout, done.stderr


def test_an_audit_run_from_another_thread_scans(zoo, tmp_path):
    """A scan sets its SIGTERM handler only where it may: in the main thread."""
    import threading

    folder, data = zoo
    results = []
    worker = threading.Thread(target=lambda: results.append(
        ncjax.audit([folder / "a.h5"], out=tmp_path / "audit", data=str(data), scan=SETTINGS)))
    worker.start()
    worker.join()
    assert results and results[0].rows[0]["status"] == "done", results and results[0].rows[0].get("error")


def test_the_scan_flags_are_checked_once_before_any_model(zoo, tmp_path, capsys):
    folder, data = zoo
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:  # the scan flags' parser refuses with one line, exit 2
        main([str(folder), "--data", str(data), "--out", str(out), "--max-epohcs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "--max-epohcs" in err[0]
    assert not out.exists()
    assert main([str(folder), "--data", str(data), "--out", str(out), "--resume"]) == 2
    assert "--resume: the audit sets these per model" in capsys.readouterr().err and not out.exists()


def test_the_command_lines_scan_flags_are_the_settings_the_library_takes():
    from ncjax.auditing.cli import scan_settings

    # As ncjax scan: each model's convention chosen from labelled pixels unless one is given.
    assert scan_settings(SCAN) == dataclasses.replace(SETTINGS, preprocess_auto=True)
    assert scan_settings([]) == ncjax.ScanSettings(preprocess_auto=True)  # each model gets its device's preset
    assert scan_settings(["--preset", "paper", "--no-compile-cache", "--seed", "3"]) == ncjax.ScanSettings(
        config=ncjax.ScanConfig.paper(), seed=3, compile_cache=False, preprocess_auto=True)
    assert scan_settings(["--preprocess", "mnist"]) == ncjax.ScanSettings(
        config=ncjax.ScanConfig.for_device(preprocessing=ncjax.Preprocessing(mode="mnist")))


def test_a_model_scanned_by_the_audit_is_scanned_as_the_command_line_scans_it(zoo, tmp_path, capsys):
    folder, data = zoo
    result = ncjax.audit([folder / "a.h5"], out=tmp_path / "audit", data=str(data), scan=SETTINGS)
    from ncjax.run import main as run_main

    run_main(["--model", str(folder / "a.h5"), "--data", str(data), "--out", str(tmp_path / "run"), "--no-progress",
              *SCAN])
    by_audit = json.loads((tmp_path / "audit" / "a" / "report.json").read_text())
    by_run = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["l1_norm"] for r in by_audit["labels"]] == [r["l1_norm"] for r in by_run["labels"]]
    assert result.rows[0]["verdict_line"] == by_run["verdict_line"]


@pytest.mark.parametrize("bad", [dict(config="fast"), dict(labels=[1, 2]), dict(labels=(-1,)), dict(seed=2**32),
                                 dict(seed=-1), dict(prefix="../x"), dict(force=1), dict(compile_cache="no")])
def test_bad_audit_scan_settings_are_refused_with_the_field_named(bad):
    with pytest.raises(ncjax.ConfigError, match=f"ScanSettings.{next(iter(bad))}"):
        ncjax.ScanSettings(**bad)


def test_audit_md_says_an_inconclusive_rows_labels_never_reached_the_threshold(tmp_path):
    from ncjax.auditing.tables import write_markdown

    rows = [{"name": "a", "status": "done", "verdict": "inconclusive", "labels": [0, 4], "score": None},
            {"name": "b", "status": "done", "verdict": "infected", "labels": [3], "score": 5.0}]
    write_markdown(rows, tmp_path / "audit.md")
    table = (tmp_path / "audit.md").read_text()
    assert "| a | inconclusive |  | never reached: 0 4 |" in table and "| b | infected | 5.00 | 3 |" in table


def test_a_manifest_preprocess_takes_auto_or_the_flags_and_is_checked_before_any_model(tmp_path):
    manifest = tmp_path / "models.json"
    rows = [{"path": "a.h5", "preprocess": "auto"}, {"path": "b.h5", "preprocess": "mnist --bgr"},
            {"path": "c.h5", "preprocess": "--mean 0.4914,0.4822,0.4465 --std 0.247,0.243,0.261"},
            {"path": "d.h5", "preprocess": "-1,0.00784313725490196"}]
    manifest.write_text(json.dumps(rows))
    assert [item.preprocess for item in expand([str(manifest)])] == [row["preprocess"] for row in rows]
    manifest.write_text(json.dumps([*rows, {"path": "e.h5", "preprocess": "--mean 0.5"}]))
    with pytest.raises(ncjax.UsageError, match="row 5: mean and std go together"):
        expand([str(manifest)])


def test_a_manifest_gives_a_weights_only_models_architecture_and_auto_needs_pixels(zoo, tmp_path):
    from conftest import KERAS_FIXTURES

    folder, data = zoo
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([
        {"path": str(KERAS_FIXTURES / "tfkeras" / "nested_weights.h5"), "name": "bare"},
        {"path": str(KERAS_FIXTURES / "tfkeras" / "nested_weights.h5"), "name": "whole",
         "architecture": str(KERAS_FIXTURES / "tfkeras" / "nested.json")},
        {"path": str(folder / "a.h5"), "preprocess": "auto"}]))
    scan = dataclasses.replace(SETTINGS, labels=(0,), config=dataclasses.replace(SETTINGS.config, max_epochs=1))
    rows = ncjax.audit([manifest], out=tmp_path / "out", data=str(data), scan=scan).rows
    assert [row["status"] for row in rows] == ["error", "done", "error"]
    assert "--architecture" in rows[0]["error"] and rows[1]["settings"]["architecture"].endswith("nested.json")
    assert "float arrays" in rows[2]["error"]  # the zoo's images are float: the model's inputs, no pixels


def test_a_row_after_a_torn_line_is_kept_and_a_full_disk_is_one_error(tmp_path, monkeypatch):
    import errno

    from ncjax.auditing import rows

    (tmp_path / rows.ROWS_FILE).write_text('{"name": "a", "status": "done"}\n{"name": "b", "sta')  # torn mid-write
    rows.append_row(tmp_path, {"name": "c", "status": "done"})
    assert [r["name"] for r in rows.read_rows(tmp_path)] == ["a", "c"]

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rows, "open", full, raising=False)
    with pytest.raises(ncjax.WriteError, match="No space left on device.*rerun the audit"):
        rows.append_row(tmp_path, {"name": "d", "status": "done"})


def test_an_audit_whose_driver_is_killed_mid_scan_reruns_to_the_rows_of_an_uninterrupted_one(tmp_path):
    import os
    import signal
    import time

    folder, data = model_zoo(tmp_path)
    command = [str(folder), "--data", str(data), "--no-progress", *SCAN]
    assert main([*command, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, "-m", "ncjax.audit", *command, "--out", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "b" / "scan_state.npz").exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the second model's scan has checkpointed an epoch: kill the driver inside it
    assert (out / "b" / "scan_state.npz").exists(), "the audit ended or stalled before its second model's scan"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    assert driver.returncode == -signal.SIGKILL and [r["name"] for r in read_rows(out)] == ["a"]
    assert main([*command, "--out", str(out)]) == 0
    killed, whole = read_rows(out), read_rows(tmp_path / "whole")
    assert [r["name"] for r in killed] == ["a", "b"]
    for field in ("status", "verdict", "labels", "score"):
        assert [r.get(field) for r in killed] == [r.get(field) for r in whole], field
    norms = [[e["l1_norm"] for e in json.loads((o / "b" / "report.json").read_text())["labels"]]
             for o in (out, tmp_path / "whole")]
    assert norms[0] == norms[1]
