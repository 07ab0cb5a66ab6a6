"""``python -m certdesk.daemon [--home DIR] [watch options]``: the same as ``certdesk watch``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from certdesk.errors import CertdeskError
from certdesk.home import Home

from .main import add_watch_arguments, watch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m certdesk.daemon", description="certdesk's drop-folder daemon"
    )
    parser.add_argument(
        "--home", type=Path, default=Path(os.environ.get("CERTDESK_HOME", ".")),
        help="folder holding inbox/, outbox/ and state/ (default: $CERTDESK_HOME or .)",
    )  # fmt: skip
    add_watch_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return watch(Home.at(args.home), args)
    except CertdeskError as exc:
        print(f"certdesk: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
