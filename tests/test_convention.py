"""--preprocess auto: each usual input convention is found by the accuracy it gives, and a model no convention
makes accurate is refused."""
from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import ncjax
from ncjax.data.convention import auto_convention, candidate_conventions, choose_convention
from ncjax.data.images import CleanImages
from ncjax.data.preprocess import Preprocessing
from ncjax.errors import DataError, PreflightError

COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30], [30, 200, 200], [128, 128, 128]],
                   np.float32)
GRAYS = np.array([[20], [100], [180], [240]], np.float32)


def _prototype_model(convention: Preprocessing, prototypes: np.ndarray):
    """The class whose colour, put through `convention`, is nearest the image's mean colour: right only when the
    images come in that convention."""
    targets = convention.to_model(jnp.asarray(prototypes)[:, None, None, :])[:, 0, 0, :]
    channels = prototypes.shape[1]

    def apply(params, x):
        colour = jnp.mean(x, axis=(1, 2))
        return -jnp.sum((colour[:, None, :] - params["targets"][None]) ** 2, axis=-1)

    return ncjax.Classifier(apply=apply, params={"targets": targets}, input_shape=(4, 4, channels),
                            num_classes=len(prototypes), output_activation="linear")


def _pixels(prototypes: np.ndarray, n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(prototypes), n)
    noise = rng.uniform(-8, 8, (n, 4, 4, prototypes.shape[1]))
    return np.clip(prototypes[labels][:, None, None, :] + noise, 0, 255).astype(np.float32), labels


@pytest.mark.parametrize("convention", candidate_conventions(3), ids=lambda p: p.describe())
def test_each_colour_convention_is_chosen_when_it_is_the_models(convention):
    pixels, labels = _pixels(COLOURS)
    choice = choose_convention(_prototype_model(convention, COLOURS), pixels, labels)
    assert choice.best.preprocessing == convention and choice.best.accuracy == 1.0 and choice.problem() is None
    assert [t.accuracy for t in choice.trials] == sorted((t.accuracy for t in choice.trials), reverse=True)
    assert choice.runner_up.preprocessing.describe() in choice.line()


@pytest.mark.parametrize("mode", ["raw", "mnist", "inception"])
def test_gray_images_try_the_three_scales_without_colour_conventions(mode):
    pixels, labels = _pixels(GRAYS)
    choice = choose_convention(_prototype_model(Preprocessing(mode=mode), GRAYS), pixels, labels)
    assert {t.preprocessing.mode for t in choice.trials} == {"raw", "mnist", "inception"}
    assert choice.best.preprocessing == Preprocessing(mode=mode) and choice.problem() is None
    assert choice.as_dict()["chosen"] == f"--preprocess {mode}"


def test_labels_the_model_does_not_number_alike_are_refused_unless_forced():
    pixels, labels = _pixels(COLOURS)
    shuffled = (labels + 1) % len(COLOURS)  # every label off by one: no convention classifies them
    clean = CleanImages(pixels, shuffled, pixels=True)
    model = _prototype_model(Preprocessing(mode="mnist"), COLOURS)
    with pytest.raises(PreflightError, match="no input convention .* labels number the classes"):
        auto_convention(model, clean)
    assert auto_convention(model, clean, force=True).problem() is not None


def test_auto_needs_labelled_raw_pixels():
    pixels, labels = _pixels(COLOURS)
    model = _prototype_model(Preprocessing(), COLOURS)
    with pytest.raises(DataError, match="float arrays"):
        auto_convention(model, CleanImages(pixels, labels, pixels=False))
    with pytest.raises(DataError, match="needs labelled clean images"):
        auto_convention(model, CleanImages(pixels, None, pixels=True))


def test_a_close_runner_up_is_named_as_a_close_call():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (40, 4, 4, 1)).astype(np.float32)
    labels = (pixels[:, 0, 0, 0] > pixels[:, 3, 3, 0]).astype(int)
    # Which of two pixels is brighter: every increasing scale (raw, /255, [-1, 1]) reads it alike.
    model = ncjax.Classifier(apply=lambda p, x: jnp.stack([x[:, 3, 3, 0], x[:, 0, 0, 0]], axis=-1), params={},
                             input_shape=(4, 4, 1), num_classes=2, output_activation="linear")
    choice = choose_convention(model, pixels, labels)
    assert choice.best.accuracy == choice.runner_up.accuracy == 1.0
    assert choice.best.preprocessing.mode == "raw"  # among equals, the first tried
    assert choice.close_call and "close call" in choice.line()


def test_the_scan_command_chooses_prints_and_records_the_convention(tmp_path, capsys, monkeypatch):
    import ncjax.cli.scan as scan_cli

    pixels, labels = _pixels(COLOURS, n=24)
    for i, (image, label) in enumerate(zip(pixels, labels)):
        folder = tmp_path / "clean" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8), "RGB").save(folder / f"{i}.png")
    truth = Preprocessing(mode="inception", channel_order="bgr")
    monkeypatch.setattr(scan_cli, "load_model", lambda *a, **k: _prototype_model(truth, COLOURS))
    out = tmp_path / "out"
    args = ["--model", "m.h5", "--data", str(tmp_path / "clean"), "--out", str(out), "--preprocess", "auto",
            "--batch-size", "8", "--nb-sample", "16", "--max-epochs", "2", "--no-progress", "--source-check", "0"]
    scan_cli.main(args)
    printed = capsys.readouterr().out
    assert "--preprocess auto: chose --preprocess inception --bgr (100.0% correct; runner-up" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["preprocess_auto"]["chosen"] == truth.describe()
    assert report["preflight"]["accuracy"] == 1.0
    assert scan_cli.main([*args, "--bgr", "--overwrite"]) == 2
    assert "leave out --bgr" in capsys.readouterr().err
