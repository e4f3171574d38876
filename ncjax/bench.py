"""`python -m ncjax.bench`: the benchmark (see ncjax/benchmarks/cli.py)."""
import sys

from ncjax.benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
