"""`python -m ncjax.convert`: SavedModels and Keras files to ONNX with tf2onnx, read back with ncjax.

The conversions need TensorFlow and tf2onnx and are skipped without them; the argument checks and the
missing-dependency message run everywhere."""
from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, relative_error
from ncjax.convert import convert_to_onnx, main

# TensorFlow and Keras warn about their own deprecations on import and load; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")


def test_missing_tensorflow_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow raises ImportError
    with pytest.raises(ncjax.MissingDependencyError, match=r"pip install 'onnx>=1.14' 'tf2onnx>=1.16' tensorflow") \
            as info:
        convert_to_onnx(KERAS_FIXTURES / "tfkeras" / "sequential.h5", tmp_path / "m.onnx")
    assert isinstance(info.value, ImportError)
    assert main([str(KERAS_FIXTURES / "tfkeras" / "sequential.h5"), str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.startswith("error: converting to ONNX needs TensorFlow")


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), str(tmp_path / "m.onnx")]) == 2
    assert "nothing to convert" in capsys.readouterr().err
    assert main([str(KERAS_FIXTURES / "tfkeras" / "sequential.h5"), str(tmp_path / "m.pb")]) == 2
    assert "should end in .onnx" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tensorflow():
    pytest.importorskip("tf2onnx", reason="the conversion needs tf2onnx: pip install 'tf2onnx>=1.16'")
    return pytest.importorskip("tensorflow", reason="the conversion needs TensorFlow")


def test_real_backdoored_model_converts_to_the_same_logits(tensorflow, real, tmp_path):
    source = real / "models" / "gtsrb_backdoor_33_logits.h5"
    result = convert_to_onnx(source, tmp_path / "backdoor.onnx")
    assert result.source_kind == "keras" and result.num_classes == 43 and result.max_relative_difference <= 1e-5
    x = jnp.asarray(np.load(real / "gtsrb" / "gtsrb_test_32x32_small_20perclass.npz")["x_roi"][:64], jnp.float32)
    native, onnx_model = ncjax.load_model(source), ncjax.load_model(tmp_path / "backdoor.onnx")
    assert onnx_model.input_layout == "NHWC" and onnx_model.input_shape == (32, 32, 3)
    assert relative_error(onnx_model(x), native(x)) <= 1e-5


def test_saved_model_folder(tensorflow, tmp_path):
    keras_model = tensorflow.keras.models.load_model(KERAS_FIXTURES / "tfkeras" / "sequential.h5", compile=False)
    folder = tmp_path / "saved"
    keras_model.export(str(folder))
    result = convert_to_onnx(folder, tmp_path / "m.onnx")
    assert result.source_kind == "saved_model" and result.max_relative_difference <= 1e-5
    assert ncjax.load_model(tmp_path / "m.onnx").num_classes == ncjax.load_model(
        KERAS_FIXTURES / "tfkeras" / "sequential.h5").num_classes
