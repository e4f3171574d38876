"""ncjax.audit on a Ray cluster of this machine: the same rows as a local audit, a killed worker's model retried
to the result of an uninterrupted scan, and a task out of retries kept as an error row."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ncjax
from conftest import model_zoo
from ncjax.auditing.config import AuditConfig
from ncjax.auditing.local import ATTEMPTS_FILE
from ncjax.auditing.rows import read_rows
from ncjax.errors import ConfigError, MissingDependencyError
from ncjax.pipeline.model_scan import STATE_FILE

ray = pytest.importorskip("ray", reason="the Ray tests need pip install 'ray>=2.9'")

# 40 epochs without early stopping: about 3 s of steps after the compile, time to kill a worker mid-scan.
SCAN = ["--labels", "1,2,3", "--batch-size", "8", "--nb-sample", "16", "--max-epochs", "40", "--patience", "40",
        "--attack-success-threshold", "0.9", "--source-check", "0"]
SETTINGS = ncjax.ScanSettings(labels=(1, 2, 3), decision=ncjax.DecisionConfig(source_check=0),
                              config=ncjax.ScanConfig.fast(batch_size=8, nb_sample=16, max_epochs=40, patience=40,
                                                           attack_success_threshold=0.9))  # what SCAN's flags say


HOLD_CLUSTER = """
import sys, ray
context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
print(context.address_info["address"], flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def cluster():
    """A local 2-CPU cluster started by another process, which holds it until its stdin closes; its address.
    (Starting it here would fork this process, where JAX already runs threads.)"""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    address = holder.stdout.readline().strip()
    assert address, "the Ray cluster did not start"
    yield address
    holder.stdin.close()
    holder.wait(timeout=60)
    holder.stdout.close()


@pytest.fixture
def zoo(tmp_path):
    folder, data = model_zoo(tmp_path)
    return folder, str(data)


@contextlib.contextmanager
def worker_killed_mid_scan(model_folder):
    """While the block runs, kill (SIGKILL) the process running the model's first attempt once its scan has
    written a checkpoint."""
    stop = threading.Event()

    def watch():
        attempts, state = model_folder / ATTEMPTS_FILE, model_folder / STATE_FILE
        while not stop.is_set():
            if attempts.exists() and state.exists():
                pid = json.loads(attempts.read_text().splitlines()[0])["pid"]
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def same_scan(folder_a, folder_b) -> None:
    a, b = (np.load(f / "triggers.npz") for f in (folder_a, folder_b))
    for key in ("masks", "patterns"):
        np.testing.assert_array_equal(a[key], b[key])
    ra, rb = (json.loads((f / "report.json").read_text()) for f in (folder_a, folder_b))
    assert ra["mad"] == rb["mad"] and ra["verdict"] == rb["verdict"]


def test_a_ray_audit_gives_the_local_rows(cluster, zoo, tmp_path):
    folder, data = zoo
    (folder / "broken.h5").write_bytes(b"not an HDF5 file")
    local = ncjax.audit([folder / "a.h5"], out=tmp_path / "local", data=data, scan=SETTINGS,
                        config=AuditConfig(progress=False))
    on_ray = ncjax.audit([folder], out=tmp_path / "ray", data=data, scan=SETTINGS,
                         config=AuditConfig(ray=cluster, cpus_per_model=1, progress=False))
    by_name = {row["name"]: row for row in on_ray.rows}
    assert [r["name"] for r in on_ray.rows] == ["a", "b", "broken"] and on_ray.failed == 1
    assert by_name["broken"]["status"] == "error" and by_name["a"]["status"] == by_name["b"]["status"] == "done"
    assert by_name["a"]["attempts"] == 1
    same_scan(tmp_path / "local" / "a", tmp_path / "ray" / "a")
    same_scan(tmp_path / "local" / "a", tmp_path / "ray" / "b")
    assert local.rows[0]["verdict"] == by_name["a"]["verdict"]
    assert len(read_rows(tmp_path / "ray")) == 3
    assert not ray.is_initialized()  # the audit connected, and disconnected at the end


def test_a_killed_worker_is_retried_and_resumes_to_the_uninterrupted_result(cluster, zoo, tmp_path):
    folder, data = zoo
    out = tmp_path / "audit"
    with worker_killed_mid_scan(out / "b"):
        result = ncjax.audit([folder / "a.h5", folder / "b.h5"], out=out, data=data, scan=SETTINGS,
                             config=AuditConfig(ray=cluster, cpus_per_model=1, retries=2, progress=False))
    a, b = result.rows
    assert a["status"] == b["status"] == "done" and result.failed == 0
    assert a["attempts"] == 1 and b["attempts"] == 2  # b's first worker was killed, Ray ran it again
    first, second = (json.loads(line) for line in (out / "b" / ATTEMPTS_FILE).read_text().splitlines())
    assert first["pid"] != second["pid"] and second["resumed"] and not first["resumed"]  # from the checkpoint
    same_scan(out / "a", out / "b")


def test_a_task_out_of_retries_is_an_error_row_and_a_rerun_scans_it(cluster, zoo, tmp_path):
    folder, data = zoo
    out = tmp_path / "audit"
    with worker_killed_mid_scan(out / "a"):
        first = ncjax.audit([folder / "a.h5"], out=out, data=data, scan=SETTINGS,
                            config=AuditConfig(ray=cluster, cpus_per_model=1, retries=0, progress=False))
    assert first.failed == 1 and "Ray task failed 1 times" in first.rows[0]["error"]
    again = ncjax.audit([folder / "a.h5"], out=out, data=data, scan=SETTINGS,
                        config=AuditConfig(ray=cluster, cpus_per_model=1, progress=False))
    assert again.failed == 0 and again.rows[0]["status"] == "done" and again.rows[0]["attempts"] == 2


def test_ray_missing_is_one_clear_error_before_any_scan(zoo, tmp_path, monkeypatch):
    folder, data = zoo
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'ray>=2.9'"):
        ncjax.audit([folder], out=tmp_path / "out", data=data, config=AuditConfig(ray="auto"))
    assert not (tmp_path / "out" / "a").exists()


@pytest.mark.parametrize("bad", [dict(ray=""), dict(cpus_per_model=0), dict(gpus_per_model=1.5),
                                 dict(retries=-1), dict(retries=True), dict(progress="yes")])
def test_bad_audit_settings_are_refused(bad):
    with pytest.raises(ConfigError, match="AuditConfig"):
        AuditConfig(**bad)
