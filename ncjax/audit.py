"""`python -m ncjax.audit`: the command line of ncjax.audit (see ncjax/auditing/cli.py)."""
import sys

from ncjax.auditing.cli import main

if __name__ == "__main__":
    sys.exit(main())
