"""``certdesk serve``: its options, its announcement, and the event loop it runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from ..codes import refusal
from ..config import Config, load_config, public_urls
from ..daemon.logs import setup_logging
from ..home import Home
from ..outbox import Outbox
from ..publication import PublicUrls, parse_listen
from ..workerlife import die_with_parent
from .options import listen_of
from .server import ServeOptions, build_publication, serve_until_stopped

__all__ = ["announce", "serve"]

log = logging.getLogger("certdesk.serve")


def announce(urls: PublicUrls, host: str, port: int, config: Config) -> None:
    """Say where the service listens and what certificates name; warn when relying
    parties elsewhere could not reach those URLs."""
    shown = f"[{host}]" if ":" in host else host
    log.info("publication service listening on http://%s:%d (Ctrl-C to stop)", shown, port)
    for label, url in (
        ("OCSP", urls.ocsp),
        ("CRL", urls.crl),
        ("issuing CA", urls.ca_issuers),
        ("root CA", urls.root),
        ("chain", urls.chain),
        ("health", urls.health),
    ):
        log.info("  %-10s %s", label, url)
    local = urls.local()
    if local:
        log.warning(
            "certificates name %s, an address of this machine only: relying parties "
            "elsewhere cannot check them; set [publish] public_url in certdesk.toml "
            "(it applies to certificates issued after the change)",
            local[0],
        )
    if not config.publish.public_url and (host, port) != parse_listen(config.publish.listen):
        log.warning(
            "certificates name %s ([publish] listen), not this service's --listen address",
            urls.base,
        )


def serve(home: Home, args: argparse.Namespace) -> int:
    """Run the publication service of ``home`` in the foreground; its exit code."""
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid, signal.SIGTERM)
    setup_logging(args.log_format)
    config = load_config(home.root)
    host, port = listen_of(config, args.listen)
    if args.max_connections < 1:
        raise refusal("OPZIONE_NON_VALIDA", opzione="--max-connections", minimo=1)
    if not args.timeout >= 0.1:
        raise refusal("OPZIONE_NON_VALIDA", opzione="--timeout", minimo=0.1)
    urls = public_urls(config)
    options = ServeOptions(host, port, args.max_connections, args.timeout, args.log_format)
    publication = build_publication(Outbox.of(home), urls, timeout=args.timeout)

    def ready() -> None:
        announce(urls, host, port, config)
        if args.ready_fd is not None:
            with os.fdopen(args.ready_fd, "wb") as pipe:
                pipe.write(b"ready\n")

    return asyncio.run(serve_until_stopped(publication, options, ready))
