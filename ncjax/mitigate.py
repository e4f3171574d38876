"""`python -m ncjax.mitigate`: the command line of ncjax.mitigate (see ncjax/mitigation/cli.py)."""
import sys

from ncjax.cli.entry import make_callable
from ncjax.mitigation.api import mitigate
from ncjax.mitigation.cli import main

make_callable(__name__, mitigate)

if __name__ == "__main__":
    sys.exit(main())
