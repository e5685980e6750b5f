"""`python -m compare ...`: the same as the `compare` script (compare.cli.main)."""

import sys

from compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
