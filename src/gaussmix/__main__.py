"""``python -m gaussmix``: the command line (see :mod:`gaussmix.cli`)."""

import sys

from gaussmix.cli import main

if __name__ == "__main__":
    sys.exit(main())
