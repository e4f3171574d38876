"""`python -m ncjax.run`: scan a model's labels and print the verdict (see ncjax/cli/scan.py)."""
import sys

from ncjax.cli.scan import main

if __name__ == "__main__":
    sys.exit(main())
