"""Command-line modules named like the functions they run (ncjax.audit, ncjax.mitigate).

`import ncjax.audit` (or `python -m ncjax.audit` in a process that imports it) makes the attribute ncjax.audit the
submodule, shadowing the function ncjax.audit that `ncjax/__init__.py` exports. Such a module calls through to
its function, so `ncjax.audit(...)` works whichever of the two the name holds.
"""
from __future__ import annotations

import sys
import types
from collections.abc import Callable


def make_callable(module_name: str, function: Callable) -> None:
    """Let the module `module_name` be called as `function`."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return function(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
