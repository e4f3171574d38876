"""save_keras_h5: round trips through load_model, and writes files real Keras reads (checked by hand)."""
from __future__ import annotations

import h5py
import jax
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, relative_error
from ncjax.models.keras import save_keras_h5

SAVED = KERAS_FIXTURES / "saved"


@pytest.mark.parametrize("source", ["tfkeras/conv.h5", "tfkeras/nested.h5", "tfkeras/merge.h5",
                                    "keras3/acts.keras", "keras3/pool.keras", "tfkeras/sequential_keras22.h5"])
def test_round_trip_is_exact(tmp_path, source):
    model = ncjax.load_model(KERAS_FIXTURES / source)
    path = tmp_path / "model.h5"
    save_keras_h5(model, path)
    again = ncjax.load_model(path)
    x = np.load(KERAS_FIXTURES / (source.split(".")[0].replace("_keras22", "") + ".npz"))["x"]
    np.testing.assert_array_equal(again(x), model(x))
    assert again.output_activation == model.output_activation
    assert [layer.path for layer in again.layers] == [layer.path for layer in model.layers]


@pytest.mark.parametrize("name", ["sequential", "nested"])
def test_real_keras_read_what_ncjax_wrote(name):
    """saved/<name>_by_ncjax.h5 was written by save_keras_h5 and loaded by tf-keras 2.21 and (sequential)
    Keras 3.15 (check_saved_with_keras.py); their outputs are in the .npz. ncjax must agree with each."""
    golden = np.load(SAVED / f"{name}_by_ncjax.npz")
    model = ncjax.load_model(SAVED / f"{name}_by_ncjax.h5")
    probs = jax.nn.softmax(model(golden["x"]))
    loaders = [k for k in golden.files if k != "x"]
    assert "tfkeras" in loaders and (name != "sequential" or "keras3" in loaders)
    for loader in loaders:
        assert relative_error(probs, golden[loader]) <= 1e-5


@pytest.mark.parametrize("name", ["sequential", "nested"])
def test_writer_still_writes_what_keras_accepted(tmp_path, name):
    """Today's writer produces the same layout as the file Keras accepted: same attributes, names, arrays."""
    path = tmp_path / "model.h5"
    save_keras_h5(ncjax.load_model(KERAS_FIXTURES / "tfkeras" / f"{name}.h5"), path)
    with h5py.File(path, "r") as new, h5py.File(SAVED / f"{name}_by_ncjax.h5", "r") as accepted:
        assert dict(new.attrs) == dict(accepted.attrs)

        def layout(f):
            items = {}
            f.visititems(lambda k, v: items.__setitem__(k, np.asarray(v) if isinstance(v, h5py.Dataset) else
                                                         {a: np.asarray(b).tolist() for a, b in v.attrs.items()}))
            return items

        a, b = layout(new), layout(accepted)
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                np.testing.assert_array_equal(a[key], b[key])
            else:
                assert a[key] == b[key]


def test_classifier_without_keras_config_cannot_be_saved(tmp_path):
    model = ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "conv.h5")
    bare = ncjax.Classifier(apply=model.apply, params=model.params, input_shape=model.input_shape,
                            num_classes=model.num_classes, output_activation="linear")
    with pytest.raises(ncjax.SaveError, match="no Keras architecture"):
        save_keras_h5(bare, tmp_path / "x.h5")
