"""One run per output folder: a folder another process holds is refused at once, and a killed holder leaves none."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ncjax
from ncjax.pipeline.out_lock import LOCK_FILE, hold_out

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ncjax.pipeline.out_lock import hold_out
    with hold_out(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def held(tmp_path):
    """A folder another process holds, and that process."""
    folder = tmp_path / "out"
    folder.mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield folder, process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_folder_another_process_holds_is_refused_naming_the_holder_until_it_dies(held):
    folder, process = held
    with pytest.raises(ncjax.UsageError, match=rf"in use by another ncjax run \(pid {process.pid} on .* since"):
        with hold_out(folder):
            pass
    process.kill()  # no clean exit: the operating system releases the lock with the process
    process.wait()
    with hold_out(folder):
        assert (folder / LOCK_FILE).read_text().startswith(f"pid {__import__('os').getpid()} ")


def test_one_process_may_hold_a_folder_again_and_lets_it_go_after(tmp_path):
    with hold_out(tmp_path):
        with hold_out(tmp_path):
            pass
        probe = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(120)", "pass"), str(tmp_path)],
                               capture_output=True, text=True, timeout=120)
        assert probe.returncode != 0 and "in use by another ncjax run" in probe.stderr  # still held here
    done = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(120)", "pass"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "held"


def test_a_scan_into_a_held_folder_is_refused_before_anything_is_removed(held, capsys):
    from conftest import KERAS_FIXTURES
    from ncjax.run import main

    folder, _ = held
    (folder / "report.json").write_text("{}")  # the running scan's file, which --overwrite would remove
    data = folder.parent / "clean.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32))
    code = main(["--model", str(KERAS_FIXTURES / "tfkeras" / "sequential.h5"), "--data", str(data), "--out",
                 str(folder), "--overwrite", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0] and "in use by another ncjax run" in err[0]
    assert (folder / "report.json").read_text() == "{}"
    with pytest.raises(ncjax.UsageError, match="in use"):
        ncjax.audit([KERAS_FIXTURES / "tfkeras" / "sequential.h5"], out=folder, data=str(data))
