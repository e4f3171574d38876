"""Hostile and bent files (built by tests/hostile/make_hostile.py) through the command line: one line on stderr,
exit 2, no traceback, nothing written outside --out, and no hang."""
from __future__ import annotations

import signal
from contextlib import contextmanager

import numpy as np
import pytest

from hostile.make_hostile import KERAS_H5, data_cases, model_cases
from ncjax.inspect import main as inspect_main
from ncjax.run import main as run_main

SMALL = ["--batch-size", "8", "--nb-sample", "16", "--max-epochs", "2", "--patience", "1", "--no-progress"]
TIME_LIMIT_S = 60  # generous: a refusal takes well under a second; a hang or a huge read would take longer


@contextmanager
def time_limit(seconds: int):
    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _files(folder):
    return {p for p in folder.rglob("*")} if folder.exists() else set()


def _refused(capsys, call, says):
    with time_limit(TIME_LIMIT_S):
        code = call()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    assert says in err[0], err[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_cases(tmp_path_factory.mktemp("hostile_models"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return data_cases(tmp_path_factory.mktemp("hostile_data"))


def _case_names(builder):
    from pathlib import Path
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return [case.name for case in builder(Path(folder) / "x")]


@pytest.mark.parametrize("name", _case_names(model_cases))
def test_hostile_model_files_are_refused(models, name, capsys, tmp_path):
    case = next(c for c in models if c.name == name)
    before = _files(case.path.parent)
    _refused(capsys, lambda: inspect_main([str(case.path)]), case.says)
    data = tmp_path / "clean.npz"
    np.savez(data, x=np.zeros((40, 12, 12, 3), np.float32))
    out = tmp_path / "out"
    _refused(capsys, lambda: run_main(["--model", str(case.path), "--data", str(data), "--out", str(out), *SMALL]),
             case.says)
    assert _files(case.path.parent) == before and not (out / "report.json").exists()


@pytest.mark.parametrize("name", _case_names(data_cases))
def test_hostile_data_is_refused(data, name, capsys, tmp_path):
    case = next(c for c in data if c.name == name)
    before = _files(case.path.parent)
    out = tmp_path / "out"
    _refused(capsys, lambda: run_main(["--model", str(KERAS_H5), "--data", str(case.path), "--out", str(out), *SMALL]),
             case.says)
    assert _files(case.path.parent) == before and not (out / "report.json").exists()
