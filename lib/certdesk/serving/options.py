"""The command-line options of ``certdesk serve`` and ``certdesk run`` (no aiohttp here:
every ``certdesk`` command builds its parser, and only ``serve`` needs the server)."""

from __future__ import annotations

import argparse

from ..codes import refusal
from ..config import Config
from ..publication import parse_listen

__all__ = ["add_listen_argument", "add_serve_arguments", "listen_of"]


def add_listen_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where the publication service listens (default: [publish] listen, "
        "127.0.0.1:8080)",
    )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_listen_argument(parser)
    parser.add_argument(
        "--max-connections", type=int, default=1000, help="connections open at once"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds a client has to send a whole request (also the keep-alive idle time)",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    # certdesk run: a pipe on which the service says it is listening (then closes it)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    # certdesk run: the service stops when that process dies, even by kill -9
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)


def listen_of(config: Config, listen: str | None) -> tuple[str, int]:
    """The address to listen on: ``--listen``, else ``[publish] listen``."""
    parsed = parse_listen(listen or config.publish.listen)
    if parsed is None:  # certdesk.toml's was checked when loaded
        raise refusal("OPZIONE_NON_VALIDA", "ascolto", valore=listen)
    return parsed
