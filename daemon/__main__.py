"""``python -m certdesk.daemon [--home DIR] [watch options]``: the same as ``certdesk watch``."""

from __future__ import annotations

import sys

from certdesk.cli import main

if __name__ == "__main__":
    sys.exit(main(["watch", *sys.argv[1:]]))
