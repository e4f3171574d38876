"""`python -m ncjax.inspect`: the layer table on stdout, a one-line error and exit code 2 on bad input."""
from __future__ import annotations

import pytest

from conftest import KERAS_FIXTURES
from ncjax.inspect import main


def test_prints_layers_shape_params_and_activation(capsys):
    assert main([str(KERAS_FIXTURES / "keras3" / "sequential.keras")]) == 0
    out = capsys.readouterr().out
    for text in ("conv2d", "Conv2D", "(None, 12, 12, 8)", "input shape: (12, 12, 3)", "classes: 5",
                 "output activation: softmax (removed"):
        assert text in out
    assert "parameters: " in out


def test_weights_only_with_architecture(capsys):
    base = KERAS_FIXTURES / "tfkeras"
    assert main([str(base / "nested_weights.h5"), "--architecture", str(base / "nested.json")]) == 0
    assert "inner_seq/" in capsys.readouterr().out


def test_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "model.h5"
    bad.write_text("not a model")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_bad_input_shape_is_one_line_and_exit_2(capsys):
    assert main([str(KERAS_FIXTURES / "keras3" / "sequential.keras"), "--input-shape", "12,x,3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --input-shape must be H,W,C integers, got '12,x,3'."


def test_the_cost_of_a_scan_is_estimated_and_a_bomb_is_named_before_any_scan(capsys, tmp_path):
    assert main([str(KERAS_FIXTURES / "tfkeras" / "sequential.h5")]) == 0
    printed = capsys.readouterr().out
    assert "scan work: " in printed and "every label" in printed and "would refuse" not in printed
    pytest.importorskip("onnx")
    from hostile.onnx_bent import compute_bomb

    assert main([str(compute_bomb(tmp_path))]) == 0
    printed = capsys.readouterr().out
    assert "TFLOP per image forward" in printed and "python -m ncjax.run would refuse this scan" in printed
