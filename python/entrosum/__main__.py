"""``python -m entrosum ...``: the same command line as the ``entrosum`` console script (see ``cli/main.py``)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m entrosum"))
