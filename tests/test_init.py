"""The public API: everything in __all__ exists, every error is an NCJaxError and a builtin, and importing it
stays light."""
from __future__ import annotations

import ncjax


def test_all_names_exist():
    for name in ncjax.__all__:
        assert hasattr(ncjax, name), name


def test_errors_subclass_ncjax_error_and_a_builtin():
    errors = [getattr(ncjax, n) for n in ncjax.__all__ if n.endswith("Error") and n != "NCJaxError"]
    assert len(errors) >= 9
    for error in errors:
        assert issubclass(error, ncjax.NCJaxError)
        assert issubclass(error, (ValueError, OSError, ImportError)), error  # OSError: files not found or unwritable


def test_import_ncjax_leaves_flax_unimported_and_reads_its_version_from_the_metadata():
    import subprocess
    import sys
    from importlib.metadata import version

    code = "import sys, ncjax; print('flax' in sys.modules, ncjax.__version__)"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert printed == ["False", version("ncjax")]
    from ncjax.lab.inject import ReferenceNet  # still reachable where it was, flax imported then

    assert ReferenceNet(num_classes=3).num_classes == 3
