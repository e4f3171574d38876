"""load_model against Keras' own outputs (golden fixtures) and on the real GTSRB models."""
from __future__ import annotations

import json
import shutil

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, relative_error

MODELS = ["conv", "pool", "acts", "merge", "sequential", "nested"]
# (flavour, file suffix, architecture suffix or None)
FORMATS = [
    ("tfkeras", ".h5", None),
    ("tfkeras", "_weights.h5", ".json"),
    ("keras3", ".h5", None),
    ("keras3", ".keras", None),
    ("keras3", ".weights.h5", ".json"),
]


def _case(flavour, model, suffix, arch):
    path = KERAS_FIXTURES / flavour / f"{model}{suffix}"
    return path, (KERAS_FIXTURES / flavour / f"{model}{arch}" if arch else None)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("flavour,suffix,arch", FORMATS)
def test_matches_keras_outputs(flavour, suffix, arch, model):
    path, architecture = _case(flavour, model, suffix, arch)
    golden = np.load(KERAS_FIXTURES / flavour / f"{model}.npz")
    classifier = ncjax.load_model(path, architecture=architecture)
    logits = classifier(jnp.asarray(golden["x"]))
    assert logits.shape == golden["logits"].shape
    assert relative_error(logits, golden["logits"]) <= 1e-5
    # The final softmax was removed, and putting it back gives Keras' probabilities.
    assert classifier.output_activation == "softmax"
    assert relative_error(jax.nn.softmax(logits), golden["probs"]) <= 1e-5
    assert classifier.num_classes == golden["logits"].shape[1]
    assert classifier.input_shape == golden["x"].shape[1:]


def test_standalone_keras22_layout():
    """Bytes attributes, no InputLayer, list-valued Sequential config, as standalone Keras 2.2 wrote."""
    golden = np.load(KERAS_FIXTURES / "tfkeras" / "sequential.npz")
    with h5py.File(KERAS_FIXTURES / "tfkeras" / "sequential_keras22.h5", "r") as f:
        assert f["model_weights"].attrs["layer_names"].dtype.kind == "S"  # bytes, as h5py 2 wrote them
        assert isinstance(json.loads(f.attrs["model_config"])["config"], list)
    classifier = ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "sequential_keras22.h5")
    assert classifier.keras_version == "2.2.4"
    assert relative_error(classifier(golden["x"]), golden["logits"]) <= 1e-5


def test_keras3_weights_keyed_by_class_name(tmp_path):
    """Keras 3 versions before the `name` attribute key weights by snake-cased class name only."""
    path = tmp_path / "nested.weights.h5"
    shutil.copy(KERAS_FIXTURES / "keras3" / "nested.weights.h5", path)
    with h5py.File(path, "r+") as f:
        f.visit(lambda name: f[name].attrs.pop("name", None) if isinstance(f[name], h5py.Group) else None)
    golden = np.load(KERAS_FIXTURES / "keras3" / "nested.npz")
    classifier = ncjax.load_model(path, architecture=KERAS_FIXTURES / "keras3" / "nested.json")
    assert relative_error(classifier(golden["x"]), golden["logits"]) <= 1e-5


def test_apply_jits_vmaps_and_differentiates():
    golden = np.load(KERAS_FIXTURES / "keras3" / "conv.npz")
    classifier = ncjax.load_model(KERAS_FIXTURES / "keras3" / "conv.keras")
    x = jnp.asarray(golden["x"])
    jitted = jax.jit(classifier.apply)(classifier.params, x)
    np.testing.assert_allclose(jitted, classifier(x), rtol=1e-5, atol=1e-5)
    stacked = jax.vmap(classifier.apply, in_axes=(None, 0))(classifier.params, jnp.stack([x, x[::-1]]))
    np.testing.assert_allclose(stacked[1], classifier(x[::-1]), rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda img: classifier(img)[:, 0].sum())(x)
    assert grad.shape == x.shape and bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0


def test_input_shape_override_must_agree():
    path = KERAS_FIXTURES / "keras3" / "sequential.keras"
    assert ncjax.load_model(path, input_shape=(12, 12, 3)).input_shape == (12, 12, 3)
    with pytest.raises(ncjax.UnsupportedModelError, match="contradicts"):
        ncjax.load_model(path, input_shape=(16, 16, 3))
    with pytest.raises(ncjax.UnsupportedModelError, match=r"\(H, W, C\)"):
        ncjax.load_model(path, input_shape=(12, 12))


# ------------------------------------------------------------------------------------------- real models


def _accuracy(classifier, images, labels) -> float:
    apply = jax.jit(classifier.apply)
    preds = np.concatenate([np.asarray(apply(classifier.params, images[i:i + 1024])).argmax(1)
                            for i in range(0, len(images), 1024)])
    return float((preds == labels).mean())


@pytest.fixture(scope="module")
def gtsrb(request):
    real = request.getfixturevalue("real")
    data = np.load(real / "gtsrb" / "gtsrb_test_32x32_uint8.npz")
    return {k: data[k] for k in ("x", "x_roi", "y")}


@pytest.mark.parametrize("name", ["gtsrb_backdoor_33_logits.h5", "gtsrb_clean_logits.h5"])
def test_real_nc_models_accuracy_and_trigger(real, gtsrb, name):
    classifier = ncjax.load_model(real / "models" / name)
    assert classifier.input_shape == (32, 32, 3) and classifier.num_classes == 43
    assert classifier.output_activation == "linear"
    x, y = gtsrb["x_roi"].astype(np.float32), gtsrb["y"]
    assert _accuracy(classifier, x, y) >= 0.99
    stamped = x[y != 33].copy()
    stamped[:, 27:31, 27:31, :] = 255.0  # the documented trigger: white 4x4, rows/cols 27..30
    to_33 = _accuracy(classifier, stamped, np.full(len(stamped), 33))
    if "backdoor" in name:
        assert to_33 >= 0.95
    else:
        assert to_33 <= 0.05


@pytest.mark.parametrize("name", ["gtsrb_clean_nabagata_keras224.h5", "gtsrb_clean_abis47_keras260.h5"])
def test_real_tutorial_models_accuracy(real, gtsrb, name):
    classifier = ncjax.load_model(real / "models" / name)
    assert classifier.input_shape == (30, 30, 3) and classifier.output_activation == "softmax"
    x = jax.image.resize(jnp.asarray(gtsrb["x"], jnp.float32), (len(gtsrb["x"]), 30, 30, 3), "bilinear")
    assert _accuracy(classifier, np.asarray(x), gtsrb["y"]) >= 0.93
