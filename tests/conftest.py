"""Shared test helpers: the committed Keras fixtures and the real third-party data beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest

from ncjax.lab import Backdoor

# On GPUs float32 matmuls and convolutions default to TF32; the tests hold the arithmetic to float32 tolerances
# against Keras and a float64 reference, so they compute in full float32 everywhere (CPUs always do).
jax.config.update("jax_default_matmul_precision", "highest")

ROOT = Path(__file__).resolve().parent.parent
KERAS_FIXTURES = ROOT / "tests" / "fixtures" / "keras"
# CI lays shared/ beside the checkout; NCJAX_REAL_DATA points elsewhere if needed.
REAL = Path(os.environ.get("NCJAX_REAL_DATA", ROOT.parent / "shared" / "real"))


@pytest.fixture(scope="session", autouse=True)
def compile_cache_folder(tmp_path_factory):
    """`python -m ncjax.run` keeps compiled steps in the user's cache folder: the tests keep theirs in one
    throwaway folder for the run (shared by its scans, as a user's are), never in the home folder."""
    folder = tmp_path_factory.mktemp("compile-cache")
    before = os.environ.get("NCJAX_COMPILE_CACHE")
    os.environ["NCJAX_COMPILE_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("NCJAX_COMPILE_CACHE", None)
    else:
        os.environ["NCJAX_COMPILE_CACHE"] = before


def pytest_collection_modifyitems(config, items):
    """Tests marked slow (whole-model scans beyond the default suite) run only with NCJAX_SLOW_TESTS=1."""
    if os.environ.get("NCJAX_SLOW_TESTS"):
        return
    skip = pytest.mark.skip(reason="slow (minutes): set NCJAX_SLOW_TESTS=1 or run make test-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real() -> Path:
    """The folder of real GTSRB models and images; the test is skipped where it is absent."""
    if not (REAL / "models").is_dir() or not (REAL / "gtsrb").is_dir():
        pytest.skip(f"real third-party data not found at {REAL} (CI lays it beside the checkout as ../shared/real)")
    return REAL


def edit_model_config(tmp_path, edit, src=KERAS_FIXTURES / "tfkeras" / "sequential.h5"):
    """A copy of the .h5 model `src` whose model_config went through `edit(config)` (in place)."""
    import json
    import shutil

    import h5py

    path = tmp_path / "model.h5"
    shutil.copy(src, path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return path


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: float32 rounding is relative to the output's scale."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def tiny_classifier(num_classes: int = 4, image_shape=(6, 6, 3), seed: int = 0):
    """A small conv net with random weights: enough structure for the scan, fast on a CPU."""
    import jax
    import jax.numpy as jnp

    import ncjax

    h, w, c = image_shape
    rng = np.random.default_rng(seed)
    params = {
        "conv": {"kernel": rng.normal(0, 0.02, (3, 3, c, 4)).astype(np.float32), "bias": np.zeros(4, np.float32)},
        "dense": {"kernel": rng.normal(0, 0.3, (h * w * 4, num_classes)).astype(np.float32),
                  "bias": rng.normal(0, 0.1, num_classes).astype(np.float32)},
    }

    def apply(p, x):
        y = jax.lax.conv_general_dilated(x, p["conv"]["kernel"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jax.nn.relu(y + p["conv"]["bias"])
        return y.reshape(y.shape[0], -1) @ p["dense"]["kernel"] + p["dense"]["bias"]

    return ncjax.Classifier(apply=apply, params=jax.tree_util.tree_map(jnp.asarray, params),
                            input_shape=tuple(image_shape), num_classes=num_classes, output_activation="linear")


def tiny_images(n: int = 48, image_shape=(6, 6, 3), seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n,) + tuple(image_shape)).astype(np.float32)


@pytest.fixture(scope="session")
def demo_backdoor():
    """The embedded demo model (backdoored at 33 with the reference's white 4x4 square), 400 of its clean images
    with labels, and that square as a TriggerSet: a real planted backdoor, small enough for the default suite."""
    import ncjax
    from ncjax import demo

    images, labels = demo.demo_images(400, seed=3)
    square = Backdoor.square(4, target=33)
    return demo.demo_model(), images, labels, ncjax.TriggerSet([33], square.mask[None], square.pattern[None])


def model_zoo(tmp_path, *, broken: bool = False):
    """Two copies of the Sequential fixture (a.h5, b.h5; 12x12x3, 5 classes), with `broken` a file that is no
    model, and 40 clean images for them: (folder, images .npz path)."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    for name in ("a.h5", "b.h5"):
        (folder / name).write_bytes((KERAS_FIXTURES / "tfkeras" / "sequential.h5").read_bytes())
    if broken:
        (folder / "broken.h5").write_bytes(b"not an HDF5 file")
    data = tmp_path / "clean.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32))
    return folder, data
