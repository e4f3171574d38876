"""A scan's estimated cost: FLOPs from the model's shapes, the limits it is held to, and where they stop a scan."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import ncjax
from conftest import KERAS_FIXTURES, tiny_classifier, tiny_images
from ncjax.models.classifier import LayerSummary
from ncjax.run import main as run_main
from ncjax.scan.work import WorkEstimate, estimate_work, forward_flops, measured

CONFIG = ncjax.ScanConfig.fast(batch_size=8, nb_sample=16, max_epochs=3, patience=1)


def _estimate(**changes) -> WorkEstimate:
    base = dict(flops_per_image=1e9, searches=10, steps=100, batch_size=32, rate=1e11, measured=False,
                search_bytes=1 << 20, memory_bytes=1 << 30)
    return WorkEstimate(**{**base, **changes})


def test_the_forward_flops_are_about_two_per_weight_use():
    model = tiny_classifier()  # a 3x3 conv of 3 to 4 channels on 6 x 6 images, then a dense layer to 4 classes
    counted = 2 * (3 * 3 * 3 * 4) * 36 + 2 * (6 * 6 * 4) * 4
    assert 0.7 * counted <= forward_flops(model) <= 1.5 * counted


def test_the_layer_table_gives_the_flops_where_xla_cannot():
    class Table:
        input_shape = (8, 8, 3)
        params = None
        layers = (LayerSummary("conv", "Conv2D", (None, 8, 8, 4), 112, 0),)

        @staticmethod
        def apply(params, x):
            raise RuntimeError("no cost analysis")

    assert forward_flops(Table()) == pytest.approx(2 * 112 * 64 + 256)


def test_the_estimate_grows_with_the_budget_and_its_problems_name_the_flag():
    small = _estimate()
    assert small.seconds == pytest.approx(3 * 1e9 * 32 * 10 * 100 / 1e11) and small.problem(24) is None
    assert _estimate(steps=200).seconds == pytest.approx(2 * small.seconds)
    late = small.problem(small.seconds / 3600 / 2)
    assert late is not None and "--max-hours" in late and "about 16 min" in late
    full = _estimate(search_bytes=2 << 30).problem(24)
    assert full is not None and "2.0 GiB" in full and "--batch-size" in full
    assert _estimate(memory_bytes=None, search_bytes=1 << 40).problem(24) is None  # unknown memory refuses nothing
    assert small.worth_measuring(24) and not _estimate(steps=1).worth_measuring(24)  # 10 s: not worth a compile
    assert _estimate(steps=1).worth_measuring(1e-6) and not _estimate(measured=True).worth_measuring(24)
    assert "about 16 min" in small.line() and "matmul" in small.line()
    quick = _estimate(steps=1, rate=1e14).line()
    assert "under 1 s at" in quick and "about under" not in quick


def test_a_measured_rate_replaces_the_matmul_rate():
    model, images = tiny_classifier(), tiny_images()
    first = estimate_work(model, config=CONFIG, searches=model.num_classes)
    timed = measured(first, model, images)
    assert not first.measured and timed.measured and timed.rate > 0 and "timed here" in timed.line()
    assert dataclasses.replace(timed, rate=first.rate, measured=False) == first


def test_scan_model_refuses_a_scan_beyond_its_hours_unless_forced():
    model, images = tiny_classifier(), tiny_images()
    with pytest.raises(ncjax.WorkLimitError, match="beyond the 1e-09 h limit"):
        ncjax.scan_model(model, images, key=jax.random.key(0), config=CONFIG, force=False, max_hours=1e-9)
    with pytest.raises(ncjax.UsageError, match="max_hours"):
        ncjax.scan_model(model, images, key=jax.random.key(0), config=CONFIG, max_hours=0)
    events = []
    outcome = ncjax.scan_model(model, images, key=jax.random.key(0), config=CONFIG, force=True, max_hours=1e-9,
                               decision=ncjax.DecisionConfig(source_check=0), callback=events.append)
    work = next(e.work for e in events if e.work is not None)
    assert work.measured and outcome.report["work"]["estimated_seconds"] == round(work.seconds, 1)


def test_the_command_line_prints_the_estimate_and_refuses_in_one_line(capsys, tmp_path):
    data = tmp_path / "clean.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32))
    flags = ["--model", str(KERAS_FIXTURES / "tfkeras" / "sequential.h5"), "--data", str(data), "--out",
             str(tmp_path / "o"), "--labels", "1,2", "--max-epochs", "1", "--batch-size", "8", "--nb-sample", "16",
             "--source-check", "0", "--force", "--no-progress"]
    assert run_main([*flags, "--max-hours", "1e-9"]) in (0, 4)  # forced: the note, then a scan to a verdict
    printed = capsys.readouterr().out
    assert "work: " in printed and "(its gradient timed here)" in printed and "scanning anyway (--force)" in printed
    unforced = [flag for flag in flags if flag != "--force"]
    assert run_main([*unforced, "--overwrite", "--max-hours", "1e-9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "beyond the 1e-09 h limit" in err[0] and "--force" in err[0]


def test_a_containers_memory_limit_below_the_machines_is_the_devices_memory(tmp_path, monkeypatch):
    import ncjax.scan.work as work

    cpu = jax.devices("cpu")[0]
    machine = work.device_memory(cpu)
    limit, unlimited = tmp_path / "memory.max", tmp_path / "unlimited"
    limit.write_text("1073741824\n")
    unlimited.write_text("max\n")
    monkeypatch.setattr(work, "CGROUP_LIMITS", (str(unlimited), str(limit)))
    assert work.device_memory(cpu) == min(1 << 30, machine or 1 << 30)
    monkeypatch.setattr(work, "CGROUP_LIMITS", (str(unlimited), str(tmp_path / "absent")))
    assert work.device_memory(cpu) == machine
