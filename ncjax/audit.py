"""`python -m ncjax.audit`: the command line of ncjax.audit (see ncjax/auditing/cli.py)."""
import sys

from ncjax.auditing.api import audit
from ncjax.auditing.cli import main
from ncjax.cli.entry import make_callable

make_callable(__name__, audit)

if __name__ == "__main__":
    sys.exit(main())
