"""`ncjax <command>` (and `python -m ncjax <command>`): one entry point for every command line of the package.

Each command is the module a user can also run with `python -m`; it is imported only when chosen, so
`ncjax --version` and `ncjax --help` start at once.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ncjax.cli.options import OneLineParser
from ncjax.core.version import __version__

# command -> (the module whose main() runs it, what it does)
COMMANDS = {
    "scan": ("ncjax.cli.scan", "scan every label of a model for a backdoor trigger and print the verdict"),
    "inspect": ("ncjax.inspect", "read a model file and print what ncjax makes of it, without scanning"),
    "mitigate": ("ncjax.mitigation.cli", "repair a model with the triggers a scan found (unlearn, prune, filter)"),
    "audit": ("ncjax.auditing.cli", "scan many models (a folder or a manifest) and tabulate the verdicts"),
    "convert": ("ncjax.convert", "convert a TensorFlow SavedModel or Keras file ncjax cannot read to ONNX"),
    "bench": ("ncjax.benchmarks.cli", "measure the scan's speed on this machine and write bench.json"),
}


def _usage() -> str:
    rows = "\n".join(f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items())
    return (f"usage: ncjax <command> [options]   (ncjax <command> --help for its options)\n\ncommands:\n{rows}\n\n"
            "  --version  print the version and exit\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="")
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"ncjax {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; the commands are {', '.join(COMMANDS)} (see ncjax --help)",
              file=sys.stderr)
        return 2
    module, _ = COMMANDS[argv[0]]
    OneLineParser.invoked_as = f"ncjax {argv[0]}"
    try:
        return int(importlib.import_module(module).main(argv[1:]) or 0)
    finally:  # a later parser in the same process (tests, a notebook) names its own command again
        OneLineParser.invoked_as = None


if __name__ == "__main__":
    sys.exit(main())
