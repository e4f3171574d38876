"""Hostile and bent files (built by tests/hostile/make_hostile.py) through the command line: one line on stderr,
exit 2, no traceback, nothing written outside --out, and no hang."""
from __future__ import annotations

import numpy as np
import pytest

from hostile.checks import canary_forms, refused, time_limit
from hostile.make_hostile import KERAS_H5, data_cases, model_cases
from hostile.onnx_bent import base_model, bent_cases, compute_bomb, nan_output_model
from hostile.planted import FORGED, canary_cases, named_cases
from ncjax.auditing.cli import main as audit_main
from ncjax.inspect import main as inspect_main
from ncjax.mitigation.cli import main as mitigate_main
from ncjax.run import main as run_main

SMALL = ["--batch-size", "8", "--nb-sample", "16", "--max-epochs", "2", "--patience", "1", "--no-progress"]


def _files(folder):
    return {p for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_cases(tmp_path_factory.mktemp("hostile_models"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return data_cases(tmp_path_factory.mktemp("hostile_data"))


def _has_onnx() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def _case_names(builder):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return [case.name for case in builder(Path(folder) / "x")]


def _run_refused(capsys, tmp_path, model, says: str, images: np.ndarray) -> str:
    """`python -m ncjax.run` on `model` with `images` as its clean data: refused in one line holding `says`, with
    no report written. Returns the line."""
    data, out = tmp_path / "clean.npz", tmp_path / "out"
    np.savez(data, x=images)
    line = refused(capsys, lambda: run_main(["--model", str(model), "--data", str(data), "--out", str(out), *SMALL]),
                   says)
    assert not (out / "report.json").exists()
    return line


@pytest.mark.parametrize("name", _case_names(model_cases))
def test_hostile_model_files_are_refused(models, name, capsys, tmp_path):
    case = next(c for c in models if c.name == name)
    before = _files(case.path.parent)
    refused(capsys, lambda: inspect_main([str(case.path)]), case.says)
    _run_refused(capsys, tmp_path, case.path, case.says, np.zeros((40, 12, 12, 3), np.float32))
    assert _files(case.path.parent) == before


@pytest.fixture(scope="module")
def bent(tmp_path_factory):
    return bent_cases(tmp_path_factory.mktemp("bent_onnx"))


@pytest.mark.parametrize("name", _case_names(bent_cases) if _has_onnx() else [])
def test_bent_onnx_files_are_refused_before_any_array_is_built(bent, name, capsys, tmp_path):
    case = next(c for c in bent if c.name == name)
    refused(capsys, lambda: inspect_main([str(case.path)]), case.says)
    _run_refused(capsys, tmp_path, case.path, case.says, np.zeros((40, 8, 8, 3), np.float32))


def test_a_compute_bomb_is_refused_from_its_shapes_before_the_pre_flight_runs_it(capsys, tmp_path):
    pytest.importorskip("onnx")
    bomb = compute_bomb(tmp_path)  # 9 MB; every activation within bounds, its scan weeks and terabytes
    line = _run_refused(capsys, tmp_path, bomb, "(--force scans anyway.)", np.zeros((40, 256, 256, 3), np.float32))
    assert "GiB of activations" in line or "h limit" in line


def test_the_unbent_onnx_base_loads_and_a_nan_output_is_refused_before_the_scan(capsys, tmp_path):
    pytest.importorskip("onnx")
    assert inspect_main([str(base_model(tmp_path))]) == 0
    capsys.readouterr()
    images = np.random.default_rng(0).uniform(0, 1, (40, 8, 8, 3)).astype(np.float32)
    _run_refused(capsys, tmp_path, nan_output_model(tmp_path), "not finite", images)
    assert not (tmp_path / "out" / "triggers.npz").exists()


@pytest.mark.parametrize("name", _case_names(data_cases))
def test_hostile_data_is_refused(data, name, capsys, tmp_path):
    case = next(c for c in data if c.name == name)
    before = _files(case.path.parent)
    out = tmp_path / "out"
    refused(capsys, lambda: run_main(["--model", str(KERAS_H5), "--data", str(case.path), "--out", str(out), *SMALL]),
             case.says)
    assert _files(case.path.parent) == before and not (out / "report.json").exists()


# ------------------------------------------------------------------------------------------ planted contents, names

TINY_SCAN = ["--labels", "0,1", "--batch-size", "8", "--nb-sample", "16", "--max-epochs", "2", "--patience", "1",
             "--source-check", "0", "--force", "--no-progress"]


def _clean_data(tmp_path, shape) -> str:
    path = tmp_path / "clean.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.uniform(0, 255, (40, *shape)).astype(np.float32), y=np.arange(40) % 5)
    return str(path)


def _written_text(folder) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*")
                     if p.is_file() and p.suffix in (".json", ".jsonl", ".md", ".csv", ".log"))


def _every_command(capsys, path, data, tmp_path) -> tuple[list[int], str]:
    """inspect, run (a tiny scan), audit and mitigate on one model file: exit codes and everything they printed."""
    out, audit_out = tmp_path / "scan", tmp_path / "audit"
    codes, printed = [], []
    for call in (lambda: inspect_main([str(path)]),
                 lambda: run_main(["--model", str(path), "--data", data, "--out", str(out), *TINY_SCAN]),
                 lambda: audit_main([str(path), "--data", data, "--out", str(audit_out), "--no-progress", *TINY_SCAN]),
                 lambda: mitigate_main(["--model", str(path), "--data", data, "--scan", str(out), "--labels", "0",
                                        "--method", "prune",
                                        "--prune-step", "0.5", "--out", str(tmp_path / f"fixed{path.suffix}"),
                                        "--no-progress"])):
        with time_limit():
            codes.append(call())
        captured = capsys.readouterr()
        printed += [captured.out, captured.err]
    return codes, "\n".join(printed)


@pytest.mark.parametrize("name", ["reshape_target", "gather_indices", "pad_amounts", "unused_tensors"])
def test_a_byte_string_planted_in_a_tensor_is_printed_nowhere(name, capsys, tmp_path):
    case = next(c for c in canary_cases(tmp_path / "models") if c.name == name)
    codes, printed = _every_command(capsys, case.path, _clean_data(tmp_path, (16, 16, 3)), tmp_path)
    # A scan of random images by a random model may end INCONCLUSIVE (exit 4): a verdict all the same.
    assert codes in ([[0, 0, 0, 0], [0, 4, 0, 0]] if case.loads else [[2, 2, 1, 2]]), printed
    shown = printed + _written_text(tmp_path)
    assert not [form for form in canary_forms() if form in shown]
    if not case.loads:  # the refusal names the node that failed instead
        assert "error: ONNX node '" in printed


def _lines_are_visible(text: str) -> None:
    assert FORGED not in text and "\x1b" not in text, text
    assert not any(line.startswith("verdict: clean: score 1.00 (forged)") for line in text.splitlines()), text


@pytest.mark.parametrize("name", ["Keras layer name", "Keras class name", "Keras version", "the file's own name",
                                  "ONNX node name", "ONNX op type", "ONNX domain", "ONNX string attribute"])
def test_names_from_files_print_as_visible_escapes(name, capsys, tmp_path):
    case = next(c for c in named_cases(tmp_path / "models") if c.name == name)
    shape = (16, 16, 3) if case.path.suffix == ".onnx" else (12, 12, 3)
    with time_limit():
        code = inspect_main([str(case.path)])
    captured = capsys.readouterr()
    _lines_are_visible(captured.out + captured.err)
    shown = captured.out if case.loads else captured.err
    assert code == (0 if case.loads else 2) and "\\nverdict: clean" in shown, shown
    if not case.loads:
        assert len(captured.err.strip().splitlines()) == 1
    if case.loads:
        run_main(["--model", str(case.path), "--data", _clean_data(tmp_path, shape), "--out", str(tmp_path / "o"),
                  *TINY_SCAN])
        captured = capsys.readouterr()
        _lines_are_visible(captured.out + captured.err + _written_text(tmp_path / "o"))
