"""`python -m compare.cli ...`: the same as the `compare` script."""

import sys

from compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
