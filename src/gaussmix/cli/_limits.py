"""What the command line refuses: usage errors and the limits on what one command may ask for."""

from __future__ import annotations


class UsageError(Exception):
    """Options that do not go together; reported like argparse's errors, with exit status 2."""


#: Most component counts --select accepts (each is one fit per structure).
MAX_SELECT = 10_000
#: Most values 'gaussmix sample' draws (rows times features), and the finest raster resolution.
MAX_SAMPLE_VALUES = 100_000_000
MAX_DPI = 1200
