"""The persistent compile cache: a second scan of the same architecture loads its steps instead of compiling;
`python -m ncjax.run` keeps it on by default and --no-compile-cache turns it off."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, tiny_classifier, tiny_images
from ncjax.run import main
from ncjax.scan.compile_cache import default_compile_cache_dir, disable_compile_cache, enable_compile_cache

CONFIG = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=3, patience=1, attack_success_threshold=0.9)
RUN = ["--model", str(KERAS_FIXTURES / "tfkeras" / "sequential.h5"), "--labels", "1,2", "--batch-size", "8",
       "--nb-sample", "16", "--max-epochs", "2", "--attack-success-threshold", "0.9", "--source-check", "0",
       "--no-progress", "--force"]

SCANNED = (0, 4)  # a verdict, or inconclusive (a label of this tiny scan may not reach the threshold)


@pytest.fixture
def cache_hits():
    hits = []

    def listen(event: str, **kwargs) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    jax.monitoring.register_event_listener(listen)
    yield hits
    jax.monitoring.unregister_event_listener(listen)
    disable_compile_cache()  # leave JAX as the next test expects: the command line turns it on again itself


def test_a_second_scan_of_the_same_architecture_loads_its_steps(tmp_path, cache_hits):
    folder = enable_compile_cache(tmp_path / "cache")
    assert folder == tmp_path / "cache" and jax.config.jax_compilation_cache_dir == str(folder)
    model, images = tiny_classifier(), tiny_images()
    first = ncjax.scan_all_labels(model, images, labels=[1, 2], config=CONFIG, key=jax.random.key(0))
    assert len(list(folder.iterdir())) >= first.compile_count > 0 and not cache_hits
    other = tiny_classifier(seed=5)  # the same architecture, other weights
    second = ncjax.scan_all_labels(other, images, labels=[1, 2], config=CONFIG, key=jax.random.key(0))
    assert len(cache_hits) >= second.compile_count == first.compile_count
    again = ncjax.scan_all_labels(model, images, labels=[1, 2], config=CONFIG, key=jax.random.key(0))
    np.testing.assert_array_equal(again.masks, first.masks)  # a loaded step computes what the compiled one did


def test_the_command_line_caches_by_default_and_not_with_no_compile_cache(tmp_path, monkeypatch, cache_hits):
    data = tmp_path / "clean.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (32, 12, 12, 3)).astype(np.float32))
    monkeypatch.setenv("NCJAX_COMPILE_CACHE", str(tmp_path / "default"))
    assert default_compile_cache_dir() == tmp_path / "default"
    assert main([*RUN, "--data", str(data), "--out", str(tmp_path / "a")]) in SCANNED
    assert any((tmp_path / "default").iterdir())
    assert main([*RUN, "--data", str(data), "--out", str(tmp_path / "b"), "--no-compile-cache"]) in SCANNED
    assert jax.config.jax_compilation_cache_dir is None
    assert main([*RUN, "--data", str(data), "--out", str(tmp_path / "c"), "--compile-cache",
                 str(tmp_path / "mine")]) in SCANNED
    assert any((tmp_path / "mine").iterdir())


def test_a_folder_that_cannot_be_made_leaves_the_cache_off(tmp_path, cache_hits):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert enable_compile_cache(blocker / "cache") is None
    assert jax.config.jax_compilation_cache_dir is None


def test_a_corrupt_or_read_only_cache_is_bypassed_with_a_warning_and_the_same_result(tmp_path, cache_hits):
    folder = enable_compile_cache(tmp_path / "cache")
    assert folder is not None
    model, images = tiny_classifier(), tiny_images()
    first = ncjax.scan_all_labels(model, images, labels=[1, 2], config=CONFIG, key=jax.random.key(0))
    for entry in folder.iterdir():
        entry.write_bytes(b"not a compiled step")
    folder.chmod(0o555)
    try:
        with pytest.warns(UserWarning, match="persistent compilation cache"):
            again = ncjax.scan_all_labels(model, images, labels=[1, 2], config=CONFIG, key=jax.random.key(0))
    finally:
        folder.chmod(0o755)
    np.testing.assert_array_equal(again.masks, first.masks)
