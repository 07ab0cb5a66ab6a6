"""``python -m certdesk.daemon [--home DIR] [watch options]``: the same as ``certdesk watch``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from certdesk.cli import main


def _as_watch(argv: Sequence[str]) -> list[str]:
    """``--home`` belongs before the ``watch`` command, every other option after it."""
    home: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--home":
            home += [arg, next(args, "")]
        elif arg.startswith("--home="):
            home.append(arg)
        else:
            rest.append(arg)
    return [*home, "watch", *rest]


if __name__ == "__main__":
    sys.exit(main(_as_watch(sys.argv[1:])))
