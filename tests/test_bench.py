"""`python -m ncjax.bench --quick`: the report's structure (never a speed)."""
from __future__ import annotations

import json

import numpy as np

from conftest import KERAS_FIXTURES
from ncjax.bench import main


def test_quick_bench_writes_every_figure(tmp_path, capsys):
    data = tmp_path / "clean.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (64, 12, 12, 3)).astype(np.float32))
    out = tmp_path / "bench.json"
    assert main(["--quick", "--model", str(KERAS_FIXTURES / "tfkeras" / "sequential.h5"), "--data", str(data),
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for key in ("device", "jax", "jaxlib", "xla_flags", "throughput", "ratio_a_over_c", "ratio_b_over_c", "flops",
                "end_to_end", "scaling_small_network", "compile_seconds_by_width"):
        assert key in report, key
    for mode in ("a_default_chunking", "b_all_labels_vmap", "c_sequential"):
        row = report["throughput"][mode]
        assert row["label_steps_per_s"] > 0 and row["images_per_s"] == row["label_steps_per_s"] * 32
    assert report["flops"]["xla_per_all_labels_step"] > 0 and report["flops"]["hand_count_per_all_labels_step"] > 0
    assert 0 < report["flops"]["fraction_of_matmul"]
    assert [row["labels"] for row in report["scaling_small_network"]] == [1, 8, 43]
    e2e = report["end_to_end"]
    assert e2e["label_steps_run"] <= e2e["label_steps_without_early_stop"] and len(e2e["lines"]) == 3
    # The images carry no labels: no source check, and the first pass is the whole scan.
    assert e2e["source_checked"] == [] and 0 < e2e["first_pass_s"] <= e2e["wall_s"]
    widths = [row["width"] for row in report["dispatch"]]
    assert widths == sorted(widths, reverse=True) and widths[-1] == 1 and len(widths) == 2  # quick: widest, narrowest
    assert all(row["seconds_per_step_epoch_per_dispatch"] > 0 for row in report["dispatch"])
    cold, warm = report["compile_cache"]["cold"], report["compile_cache"]["warm"]
    assert cold["compile_count"] == warm["compile_count"] > 0  # the same executables, built or loaded
    assert 0 < cold["host_s"] < cold["scan_s"] and 0 < warm["host_s"] < warm["scan_s"]
    table = capsys.readouterr().out
    assert "(c) one label per call" in table and "GFLOP/s" in table and "epoch per dispatch" in table


def test_each_part_is_saved_as_it_ends():
    # A stopped benchmark keeps what it measured: save() sees the report grow part by part.
    import ncjax
    from ncjax.benchmarks.suite import benchmark

    model = ncjax.load_model(KERAS_FIXTURES / "tfkeras" / "sequential.h5")
    images = np.random.default_rng(0).uniform(0, 255, (64, 12, 12, 3)).astype(np.float32)
    saved = []
    benchmark(model=model, images=images, model_name="fixture", repeats=2, quick=True, log=lambda line: None,
              save=lambda report: saved.append(set(report)))
    assert len(saved) >= 4
    assert "throughput" in saved[0] and "end_to_end" not in saved[0]
    assert saved == sorted(saved, key=len) and "end_to_end" in saved[-1]


def test_the_dispatch_part_visits_the_widths_compaction_does():
    from conftest import tiny_classifier
    from ncjax.benchmarks.bench_compile import compaction_widths

    model = tiny_classifier(num_classes=43)
    config = ncjax_config()
    assert compaction_widths(model, config) == [43, 32, 16, 8, 4, 2, 1]
    assert compaction_widths(model, config.replace(min_lane_width=8)) == [43, 32, 16, 8]
    assert compaction_widths(model, config.replace(min_lane_width=64)) == [43]  # never compacts
    assert compaction_widths(model, config.replace(label_chunk=5)) == [5, 4, 2, 1]


def ncjax_config():
    import ncjax

    return ncjax.ScanConfig.fast()


def test_an_unknown_part_is_refused_before_measuring(capsys):
    assert main(["--only", "dispatch,warp-speed"]) == 2
    printed = capsys.readouterr().err
    assert printed.startswith("error: ") and "warp-speed" in printed and printed.count("\n") == 1
