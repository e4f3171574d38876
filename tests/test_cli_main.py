"""`ncjax <command>` and `python -m ncjax <command>`: one entry point for every command line."""
from __future__ import annotations

import subprocess
import sys

import pytest

import ncjax
from ncjax.cli.main import COMMANDS, main


def test_version_and_usage(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ncjax {ncjax.__version__}"
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert all(f"  {name} " in usage for name in COMMANDS)
    assert main([]) == 2  # no command: the usage, and a failing exit for scripts
    assert main(["scna"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown command 'scna'" in err[0] and "scan" in err[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_and_version_under_its_name(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith(f"usage: ncjax {command} ")
    with pytest.raises(SystemExit) as info:
        main([command, "--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"ncjax {ncjax.__version__}"
    from ncjax.cli.scan import build_parser

    assert build_parser().prog == "python -m ncjax.run"  # the name set for the command does not outlive it


def test_python_dash_m_ncjax_runs_a_command():
    done = subprocess.run([sys.executable, "-m", "ncjax", "scan", "--model", "missing.h5", "--data", "x.npz"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
