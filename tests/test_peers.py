"""The peer benchmark's plumbing, with a stand-in for the reference (never a speed: make bench-peers runs it)."""
from __future__ import annotations

import json
import sys

import jax
import numpy as np
import pytest

from conftest import tiny_classifier, tiny_images
from ncjax import ScanConfig
from ncjax.benchmarks.cli import main, peer_lines
from ncjax.benchmarks.peers import PeerSettings, initial_trigger, reference_run
from ncjax.errors import ConfigError, UsageError

# Prints what bench_ref.py prints: its step time (fixed here), and the L1 of the mask it started from (or 99).
STAND_IN = '''
import argparse, json
import numpy as np
p = argparse.ArgumentParser()
p.add_argument("--label", type=int); p.add_argument("--epochs", type=int); p.add_argument("--init")
a = p.parse_args()
l1 = float(np.load(a.init)["mask"].sum()) if a.init else 99.0
print("noise from TensorFlow")
print("BENCH_REF " + json.dumps({"label": a.label, "epochs": a.epochs, "steady_step_s_median": 0.04,
                                 "mask_l1_returned": l1, "mask_l1_final": l1}))
'''


@pytest.fixture
def stand_in(tmp_path):
    (tmp_path / "bench_ref.py").write_text(STAND_IN)
    return PeerSettings(reference_dir=tmp_path, python=sys.executable, label=2, epochs=1, rounds=1,
                        same_start_epochs=1)


def test_ncjaxs_first_trigger_is_the_one_its_scan_starts_from():
    model = tiny_classifier()
    config = ScanConfig.paper(max_epochs=1, early_stop=False)
    start = initial_trigger(model, 1, jax.random.key(3), config)
    assert start["mask"].shape == (6, 6) and start["pattern"].shape == (6, 6, 3)
    assert 0 <= start["mask"].min() and start["mask"].max() <= 1 and 0 <= start["pattern"].min() <= 255
    other = initial_trigger(model, 2, jax.random.key(3), config)
    assert not np.allclose(start["mask"], other["mask"])  # each label starts elsewhere, as in the scan


def test_the_command_times_both_sides_hands_the_reference_ncjaxs_first_trigger_and_keeps_bench_json(
        stand_in, tmp_path, monkeypatch, capsys):
    import ncjax.benchmarks.cli as cli

    model = tiny_classifier()
    monkeypatch.setattr(cli, "_inputs", lambda args: (model, tiny_images(), None, "tiny"))
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"throughput": {"kept": 1}}))
    assert main(["--peers", "--peer-dir", str(stand_in.reference_dir), "--peer-python", sys.executable,
                 "--label", "2", "--rounds", "1", "--epochs", "1", "--same-start-epochs", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["throughput"] == {"kept": 1} and report["peers"]["model"] == "tiny"
    result = report["peers"]
    seconds = result["seconds_per_label_step"]
    assert seconds["reference_one_label"] == 0.04
    assert result["ncjax_over_reference"]["one_label"] == pytest.approx(seconds["ncjax_one_label"] / 0.04)
    assert [len(runs) for runs in result["rounds"].values()] == [1, 1, 1]
    wide = result["rounds"]["ncjax_all_labels"][0]
    assert wide["labels"] == 4 and wide["label_steps"] == 4 * 2 * 31  # two epochs: the steady rate between them
    assert wide["seconds_per_label_step"] > 0 and wide["whole_run_seconds_per_label_step"] > 0
    assert result["rounds"]["ncjax_one_label"][0]["label_steps"] == 31  # one of the reference's 31-step epochs
    # The stand-in reports the L1 of the mask it was handed: ncjax's own start for label 2.
    start = initial_trigger(model, 2, jax.random.key(0), ScanConfig.paper())
    same = result["same_start"]
    assert same["reference_mask_l1"] == pytest.approx(float(start["mask"].sum()), rel=1e-6) != 99.0
    assert same["start_mask_l1"] == pytest.approx(same["reference_mask_l1"], rel=1e-6)
    captured = capsys.readouterr()
    assert "reference, one label" in captured.out and "same start" in captured.out
    assert len(peer_lines(result)) == 7 and captured.err.count("round 1:") == 3


def test_bad_peer_settings_are_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(UsageError, match="no bench_ref.py"):
        PeerSettings(reference_dir=tmp_path, python=sys.executable)
    (tmp_path / "bench_ref.py").write_text("")
    with pytest.raises(UsageError, match="make bench-peers creates"):
        PeerSettings(reference_dir=tmp_path, python=tmp_path / "missing")
    with pytest.raises(ConfigError, match="rounds"):
        PeerSettings(reference_dir=tmp_path, python=sys.executable, rounds=0)
    assert main(["--peers", "--peer-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.startswith("error: no bench_ref.py")
    # The reference always loads the real model: another model would compare two different networks.
    assert main(["--peers", "--model", "other.h5", "--peer-dir", str(tmp_path), "--out", str(tmp_path / "b.json")]) == 2
    assert "leave out --model" in capsys.readouterr().err


def test_a_reference_that_hangs_is_stopped_with_one_line(tmp_path):
    (tmp_path / "bench_ref.py").write_text("import time\ntime.sleep(30)\n")
    settings = PeerSettings(reference_dir=tmp_path, python=sys.executable, timeout_s=0.5)
    with pytest.raises(UsageError, match="ran past 0.5 s"):
        reference_run(settings, epochs=1)
