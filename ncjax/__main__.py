"""`python -m ncjax <command>`: the same as the `ncjax` command (ncjax/cli/main.py)."""
import sys

from ncjax.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
