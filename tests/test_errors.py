"""Every error class lives in ncjax/errors.py, is an NCJaxError and a builtin, and is public."""
from __future__ import annotations

import ast
import inspect

import ncjax
from conftest import ROOT
from ncjax import errors


def _error_classes():
    return [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
            if issubclass(obj, Exception) and obj.__module__ == errors.__name__]


def test_every_error_is_an_ncjax_error_and_a_builtin_and_exported():
    classes = _error_classes()
    assert len(classes) >= 14
    for error in classes:
        assert issubclass(error, ncjax.NCJaxError)
        if error is not ncjax.NCJaxError:
            builtin = [base for base in error.__mro__
                       if base.__module__ == "builtins" and base not in (Exception, BaseException, object)]
            assert builtin, f"{error.__name__} subclasses no builtin error"
        assert error.__name__ in ncjax.__all__, f"{error.__name__} is not in ncjax.__all__"


def test_no_module_but_errors_defines_an_exception_class():
    """A class whose bases name an Error or Exception anywhere else in the package is a stray."""
    strays = []
    for path in (ROOT / "ncjax").rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) for b in bases):
                    strays.append(f"{path.relative_to(ROOT)}: {node.name}({', '.join(bases)})")
    assert not strays, strays
