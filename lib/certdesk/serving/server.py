"""``certdesk serve``: the publication service of one home, on aiohttp's low-level server.

It reads ``outbox/`` only (the CA's certificates, the CRL, the pre-signed OCSP responses,
the ledger's serials): no key, no passphrase, no state store; it can run as another user
with read-only access to ``outbox/``. SIGTERM or SIGINT stop it: it stops listening,
lets the requests in hand finish (``SHUTDOWN_SECONDS`` at most), and exits 0.

Limits against clients that hold resources:

- ``max_connections`` open at once; one more is answered 503 and closed at once;
- ``timeout`` seconds for a whole request to arrive: an idle keep-alive connection, or
  one whose request line and headers trickle in, is closed after that long without a
  request (aiohttp's keep-alive timer, which runs from the connection's start and from
  each response); a POST body gets the same time, then 408;
- request line and headers at most 8 KiB (aiohttp's parser answers 400), an OCSP GET at
  most 255 bytes of base64 (414), a POST body at most ``handler.POST_MAX_BYTES`` (413).

One access-log line per request (``accesslog``), never a body.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..clock import now_utc
from ..codes import refusal
from ..outbox import Outbox
from ..publication import PublicUrls
from .accesslog import AccessLines, AccessLog
from .freshness import Freshness
from .handler import Publication
from .issuers import IssuerDirectory
from .published import CaCertificate, PublishedFile
from .responder import Responder
from .serials import SerialIndex

__all__ = ["ServeOptions", "build_publication", "serve_until_stopped"]

log = logging.getLogger("certdesk.serve")

SHUTDOWN_SECONDS = 5.0
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
    b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    max_connections: int = 1000
    timeout: float = 15.0
    log_format: str = "text"


def build_publication(
    outbox: Outbox, urls: PublicUrls, *, timeout: float, clock: Callable[[], datetime] = now_utc
) -> Publication:
    """The request handler for ``outbox``, answering at the paths of ``urls``."""
    issuers = IssuerDirectory(outbox)
    root = PublishedFile(outbox.root_certificate, CaCertificate.of)
    serials = SerialIndex(outbox.ledger)
    freshness = Freshness(outbox, issuers, serials, clock)
    responder = Responder(outbox, issuers, serials, clock, freshness.refused_stale)
    return Publication(urls, responder, freshness, issuers, root, timeout=timeout)


class _Busy(asyncio.Protocol):
    """A connection over the limit: 503, closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class _BoundedServer(web.Server):
    """aiohttp's low-level server, with at most ``max_connections`` connections open."""

    def __init__(self, handler: Publication, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections

    def __call__(self) -> RequestHandler:  # the protocol factory of the listening socket
        if len(self.connections) >= self.max_connections:
            return _Busy()  # type: ignore[return-value]
        return super().__call__()


class _OneLine(logging.Filter):
    """aiohttp logs a malformed request as an error with its traceback (and the request
    line it could not read, up to 8 KiB): a warning of one short line is enough, a
    client's garbage is not a bug of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"[:300]
            record.args, record.exc_info, record.exc_text = None, None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


async def serve_until_stopped(
    publication: Publication, options: ServeOptions, on_ready: Callable[[], None]
) -> int:
    """Listen, call ``on_ready``, serve until SIGTERM or SIGINT; the exit code."""
    protocol_log = logging.getLogger("certdesk.serve.http")
    protocol_log.addFilter(_OneLine())
    access = AccessLines(options.log_format)
    server = _BoundedServer(
        publication,
        max_connections=options.max_connections,
        keepalive_timeout=options.timeout,
        lingering_time=1.0,
        access_log_class=AccessLog,
        access_log=access,
        logger=protocol_log,
    )
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise refusal(
            "ASCOLTO_NON_DISPONIBILE",
            indirizzo=f"{options.host}:{options.port}",
            errore=exc.strerror or exc,
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    publication.responder.read_serials()  # the ledger's serials, read in the background
    on_ready()
    try:
        await stop.wait()
        log.info("stopping: finishing the requests in hand")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        access.flush()
    return 0
