"""The public API: everything in __all__ exists, and every error is an NCJaxError and a builtin."""
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
        assert issubclass(error, (ValueError, FileNotFoundError, ImportError)), error
