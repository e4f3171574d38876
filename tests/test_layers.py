"""The package's layers, read from its source: the verdict stays numpy, only commands parse arguments and print,
and no library module imports a command.

Layers, from the bottom: models and data (keras/, onnx/, loading, data, preprocess, safe_files), the search
(trigger, losses, adam, schedule, step), the scan (slots, plan, compiled, ahead, checkpoint, scan, sources,
restarts), the verdict (outlier, score, source_check, verdict: numpy only), the pipeline, then mitigation/,
auditing/ and the commands on top.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ncjax"
# Modules that parse arguments and print: the `python -m ncjax.X` commands and their helpers.
COMMANDS = {"ncjax.run", "ncjax.inspect", "ncjax.mitigate", "ncjax.audit", "ncjax.bench", "ncjax.convert",
            "ncjax.cli.scan", "ncjax.cli.options", "ncjax.cli.entry", "ncjax.benchmarks.cli", "ncjax.mitigation.cli",
            "ncjax.auditing.cli", "ncjax.cli.main", "ncjax.__main__"}
# Layers, lowest first: a module imports ncjax modules of its own layer or below, and within a layer only its own
# package. The verdict is numpy only (tested below), so it sits beside the search, under the scan that runs the
# source check with its data types; the commands (and the root, which exports them all) may import anything.
LAYERS = {"ncjax.errors": 0, "ncjax.core": 1, "ncjax.models": 2, "ncjax.data": 3, "ncjax.search": 4,
          "ncjax.verdict": 4, "ncjax.scan": 5, "ncjax.pipeline": 6, "ncjax.mitigation": 7, "ncjax.auditing": 7,
          "ncjax.lab": 7, "ncjax.benchmarks": 7, "ncjax.cli": 7, "ncjax.demo": 8}
TOP = 9
NUMPY_ONLY = {"ncjax.verdict.outlier", "ncjax.verdict.score", "ncjax.verdict.source_check", "ncjax.verdict.decision",
              "ncjax.verdict.margin", "ncjax.verdict.per_label"}


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")}


def _imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES}
    return found


def _reachable(module: str) -> set[str]:
    """Every module `module` imports, directly or through ncjax modules (names outside ncjax are not followed)."""
    seen, stack = set(), [module]
    while stack:
        for name in _imports(MODULES[stack.pop()]):
            if name not in seen:
                seen.add(name)
                if name in MODULES and name != "ncjax":
                    stack.append(name)
    return seen


@pytest.mark.parametrize("module", sorted(NUMPY_ONLY))
def test_the_verdict_never_imports_jax(module):
    jax = sorted(name for name in _reachable(module) if name.split(".")[0] in ("jax", "jaxlib", "flax", "optax"))
    assert not jax, f"{module} reaches {jax}"


def _layer(module: str) -> tuple[int, str]:
    """(layer, package) of an ncjax module: the longest prefix in LAYERS; commands and the root on top."""
    if module in COMMANDS or module == "ncjax":
        return TOP, module
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    assert prefix is not None, f"{module} is in no layer: add its package to LAYERS"
    return LAYERS[prefix], prefix


def _imports_up(modules: dict[str, ast.Module]) -> list[str]:
    wrong = []
    for name, tree in modules.items():
        layer, package = _layer(name)
        for imported in _imports(tree):
            if not imported.startswith("ncjax") or imported not in modules:
                continue
            other, other_package = _layer(imported)
            if other > layer or (other == layer < TOP and other_package != package):
                wrong.append(f"{name} (layer {layer}) imports {imported} (layer {other})")
    return sorted(wrong)


def test_no_import_runs_up_the_layers():
    assert not _imports_up(MODULES), _imports_up(MODULES)


def test_the_layering_check_catches_an_import_up_and_one_across():
    modules = {name: ast.parse("") for name in ("ncjax.scan.result", "ncjax.auditing.rows", "ncjax.search.config")}
    modules["ncjax.search.step"] = ast.parse("from ncjax.scan.result import EpochLogs\nimport ncjax.search.config")
    modules["ncjax.mitigation.api"] = ast.parse("import ncjax.auditing.rows")
    modules["ncjax.run"] = ast.parse("import ncjax.auditing.rows")
    assert _imports_up(modules) == ["ncjax.mitigation.api (layer 7) imports ncjax.auditing.rows (layer 7)",
                                    "ncjax.search.step (layer 4) imports ncjax.scan.result (layer 5)"]


def test_no_library_module_imports_a_command():
    wrong = sorted(f"{name} imports {imported}" for name, tree in MODULES.items()
                   if name not in COMMANDS and name != "ncjax" for imported in _imports(tree) if imported in COMMANDS)
    assert not wrong, wrong


def test_only_commands_parse_arguments_and_print():
    wrong = []
    for name, tree in MODULES.items():
        if name in COMMANDS:
            continue
        if "argparse" in _imports(tree):
            wrong.append(f"{name} imports argparse")
        wrong += [f"{name}:{node.lineno} prints" for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert not wrong, wrong


def test_the_layer_lists_name_real_modules():
    assert COMMANDS | NUMPY_ONLY <= set(MODULES)


def test_mitigation_knows_no_file_format():
    """Mitigation asks the importer (Classifier.roles) what weights do; it never reads a format's internals."""
    wrong = []
    for name, tree in MODULES.items():
        if not name.startswith("ncjax.mitigation"):
            continue
        formats = ("ncjax.models.keras", "ncjax.models.onnx")
        wrong += [f"{name} imports {i}" for i in _imports(tree) if i.startswith(formats)]
        wrong += [f"{name}:{node.lineno} reads .{node.attr}" for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr in ("format", "graph", "keras_config")]
    assert not wrong, wrong
