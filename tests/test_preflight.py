"""Pre-flight: a wrong intensity range or a model that ignores its input is caught before the scan."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import ncjax
from ncjax.data.preflight import run_preflight
from ncjax.data.preprocess import Preprocessing


def _threshold_model(scale: float):
    """Class 1 when the mean input exceeds 0.5 x `scale`, else class 0: it expects inputs in [0, scale]."""
    def apply(params, x):
        score = jnp.mean(x, axis=(1, 2, 3)) / scale - 0.5
        return jnp.stack([-score, score], axis=-1) * 10

    return ncjax.Classifier(apply=apply, params={}, input_shape=(4, 4, 1), num_classes=2, output_activation="linear")


def _images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    pixels = np.where(labels[:, None, None, None] == 1, 220.0, 30.0) + rng.uniform(-20, 20, (n, 4, 4, 1))
    return pixels.astype(np.float32), labels


def test_a_model_that_wants_x_over_255_given_raw_pixels_is_stopped_with_the_flag():
    pixels, labels = _images()
    model = _threshold_model(1.0)  # trained on x / 255
    wrong = run_preflight(model, pixels, labels, preprocessing=Preprocessing(), from_pixels=True)
    assert wrong.given.accuracy <= 0.6 and "pass --preprocess mnist" in wrong.problem()
    right = run_preflight(model, pixels / 255, labels, preprocessing=Preprocessing(mode="mnist"), from_pixels=True)
    assert right.given.accuracy == 1.0 and right.problem() is None
    arrays = run_preflight(model, pixels, labels, preprocessing=Preprocessing(), from_pixels=False)
    assert "divided by 255" in arrays.problem()


def test_a_constant_model_is_stopped_and_unlabelled_data_only_checks_that():
    pixels, labels = _images()
    constant = ncjax.Classifier(apply=lambda p, x: jnp.zeros((x.shape[0], 3)) + jnp.arange(3.0), params={},
                                input_shape=(4, 4, 1), num_classes=3, output_activation="linear")
    check = run_preflight(constant, pixels, None, preprocessing=Preprocessing(), from_pixels=False)
    assert check.constant_output and "does not depend on its input" in check.problem()
    fine = run_preflight(_threshold_model(255.0), pixels, None, preprocessing=Preprocessing(), from_pixels=False)
    assert fine.problem() is None and fine.given is None and fine.as_dict()["accuracy"] is None


def test_the_command_line_stops_then_scans_with_force(tmp_path, capsys, monkeypatch):
    import json

    from PIL import Image

    import ncjax.cli.scan as run_module

    pixels, labels = _images(24)
    for i, (image, label) in enumerate(zip(pixels, labels)):
        folder = tmp_path / "clean" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image[..., 0], 0, 255).astype(np.uint8), "L").save(folder / f"{i}.png")
    monkeypatch.setattr(run_module, "load_model", lambda *a, **k: _threshold_model(1.0))  # wants x / 255
    out = tmp_path / "o"
    args = ["--model", "m.h5", "--data", str(tmp_path / "clean"), "--out", str(out), "--batch-size", "8",
            "--nb-sample", "16", "--max-epochs", "2", "--no-progress"]

    def scanned(code: int) -> dict:
        report = json.loads((out / "report.json").read_text())
        assert code == (4 if report["verdict"] == "inconclusive" else 0)
        return report

    report = scanned(run_module.main(args))  # by default the convention is chosen from the labelled images
    assert "(the default for labelled pixels): chose --preprocess mnist" in capsys.readouterr().out
    assert report["preflight"]["accuracy"] == 1.0 and report["run"]["preprocess_auto"]["chosen"] == "--preprocess mnist"
    args += ["--preprocess", "raw", "--overwrite"]
    assert run_module.main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "pass --preprocess mnist" in err[0] and "--force" in err[0]
    assert "pre-flight: the model classifies" in captured.out  # what the check found, printed before the refusal
    assert not (out / "report.json").exists()
    report = scanned(run_module.main([*args, "--preprocess", "mnist"]))
    assert "pre-flight: the model classifies 100.0% of 24" in capsys.readouterr().out
    share_of_ones = float(np.mean(labels == 1))  # read raw, every image looks bright: all called 1
    assert report["preflight"]["accuracy"] == 1.0
    assert report["preflight"]["other_readings"]["with --preprocess raw"] == pytest.approx(share_of_ones)
    report = scanned(run_module.main([*args, "--force"]))
    assert "scanning anyway" in capsys.readouterr().out
    assert report["preflight"]["accuracy"] == pytest.approx(share_of_ones)


def test_an_accuracy_near_chance_stops_the_scan_with_what_to_check():
    pixels, labels = _images()
    model = _threshold_model(255.0)
    fine = run_preflight(model, pixels, labels, preprocessing=Preprocessing(), from_pixels=False)
    assert fine.given.accuracy == 1.0 and fine.problem() is None
    # Labels numbered otherwise than the model's classes: no reading helps, and the accuracy is about chance.
    swapped = run_preflight(model, pixels, 1 - labels, preprocessing=Preprocessing(), from_pixels=False)
    assert swapped.given.accuracy == 0.0
    assert "about chance" in swapped.problem() and "labels number the classes" in swapped.problem()
    half = np.where(np.arange(len(labels)) % 2 == 0, labels, 1 - labels)  # 50 %: chance for two classes
    assert "about chance" in run_preflight(model, pixels, half, preprocessing=Preprocessing(),
                                           from_pixels=False).problem()
    most = np.where(np.arange(len(labels)) % 4 == 0, 1 - labels, labels)  # 75 %: well above chance
    assert run_preflight(model, pixels, most, preprocessing=Preprocessing(), from_pixels=False).problem() is None


def test_a_model_whose_outputs_are_not_finite_is_refused_before_any_scan():
    import jax
    import jax.numpy as jnp

    import ncjax
    from conftest import tiny_images

    broken = ncjax.Classifier(apply=lambda p, x: jnp.full((x.shape[0], 4), jnp.nan) * p["w"], params={"w": 1.0},
                              input_shape=(6, 6, 3), num_classes=4, output_activation="linear")
    with pytest.raises(ncjax.PreflightError, match="outputs for 48 of 48 images are not finite"):
        ncjax.scan_model(broken, tiny_images(), key=jax.random.key(0), config=ncjax.ScanConfig.fast(), force=True)
