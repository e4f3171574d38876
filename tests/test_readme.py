"""The Python blocks of README.md and docs/python-api.md run as written, in order, on a small Keras model and
clean images it classifies (model.h5 and clean.npz in the working folder). Only the schedule is cut short: the
presets are patched to two short epochs, which the blocks cannot tell apart from the real ones but for time."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES

ROOT = Path(__file__).resolve().parents[1]
# Blocks that need what the tests do not install: PyTorch.
NOT_RUN = ("torch.onnx.export",)


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """model.h5 (12x12x3, 5 classes) and clean.npz: uint8 pixels labelled with the model's own answers, so the
    model classifies them all (as a user's clean images should be)."""
    shutil.copy(KERAS_FIXTURES / "tfkeras" / "sequential.h5", tmp_path / "model.h5")
    model = ncjax.load_model(tmp_path / "model.h5")
    pixels = np.random.default_rng(0).integers(0, 256, (64, 12, 12, 3), dtype=np.uint8)
    labels = np.asarray(model.apply(model.params, jax.numpy.asarray(pixels, jax.numpy.float32))).argmax(-1)
    np.savez(tmp_path / "clean.npz", x=pixels, y=labels)
    short = dict(batch_size=8, nb_sample=16, max_epochs=2, patience=1, attack_success_threshold=0.5)
    preset = classmethod(lambda cls, **changes: cls(**{**short, **changes}))
    for name in ("paper", "fast", "focused", "for_device"):
        monkeypatch.setattr(ncjax.ScanConfig, name, preset)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("document", ["README.md", "docs/python-api.md"])
def test_the_python_blocks_run_as_written(workdir, document, capsys):
    blocks = [block for block in python_blocks(ROOT / document) if not any(skip in block for skip in NOT_RUN)]
    assert blocks, f"{document} has no Python block"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, document, "exec"), namespace)  # noqa: S102 - the project's own documentation
    if document == "README.md":
        assert namespace["preprocessing"] == ncjax.Preprocessing(mode="raw")  # the fixture takes raw pixels
        assert (workdir / "scan" / "report.json").exists()
        assert capsys.readouterr().out.startswith(namespace["outcome"].verdict.line())
    else:
        assert len(namespace["result"].labels) == 2 * namespace["model"].num_classes + 2
