"""`python -m ncjax.mitigate`: the command line of ncjax.mitigate (see ncjax/mitigation/cli.py)."""
import sys

from ncjax.mitigation.cli import main

if __name__ == "__main__":
    sys.exit(main())
