"""The OCSP responder's decision: which pre-signed bytes answer a request.

It never signs. For a request about one certificate of the issuing CA it answers:

- the pre-signed response in ``outbox/ocsp/<serial-hex>.der``, read now, while its
  nextUpdate has not passed;
- ``tryLater`` when there is none yet for a certificate the ledger lists (the daemon signs
  a new certificate's first response right after its receipt), when the one there went
  stale (a daemon that stopped refreshing: never stale data), or when the CA is not
  published yet;
- ``unauthorized`` for a serial this CA did not issue, an issuer that is not one of the
  issuing CAs ``outbox/ca/`` publishes (after a rollover, every live one: the request's
  issuer hashes pick it), a serial that another of them signed, a hash it cannot
  compute, or an expired certificate whose last response went stale;
- ``malformedRequest`` for bytes that are not one OCSP request about one certificate;
- ``internalError`` when the file there is not a response for that serial (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..outbox import Outbox
from .issuers import IssuerDirectory
from .ocsp_wire import (
    INTERNAL_ERROR,
    MALFORMED_REQUEST,
    TRY_LATER,
    UNAUTHORIZED,
    read_request,
)
from .published import Response, read_response, response_of
from .serials import SerialIndex

__all__ = ["OcspAnswer", "Responder"]

log = logging.getLogger("certdesk.serve")


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    """The bytes to send, and what they say (for the access log and the headers)."""

    der: bytes
    outcome: str  # good, revoked, unauthorized, malformedRequest, tryLater, internalError
    serial: int | None = None
    response: Response | None = None  # a pre-signed response (the others are unsigned)


class Responder:
    def __init__(
        self,
        outbox: Outbox,
        issuers: IssuerDirectory,
        serials: SerialIndex,
        clock: Callable[[], datetime],
        on_stale: Callable[[int], None],
    ) -> None:
        self.outbox = outbox
        self.issuers = issuers
        self.serials = serials
        self.clock = clock
        self._on_stale = on_stale
        self._refreshing: asyncio.Future[None] | None = None

    async def answer(self, der: bytes) -> OcspAnswer:
        cert_id = read_request(der)
        if cert_id is None:
            return OcspAnswer(MALFORMED_REQUEST, "malformedRequest")
        serial = cert_id.serial
        if self.issuers.first.certificate.read() is None:  # no CA published yet (a first start)
            return OcspAnswer(TRY_LATER, "tryLater", serial)
        issuer = self.issuers.issuer_of(cert_id)
        if issuer is None:
            return OcspAnswer(UNAUTHORIZED, "unauthorized", serial)
        data = read_response(self.outbox, serial)
        if data is None:
            return await self._not_signed(serial)
        response = response_of(data)
        if response is None or response.serial != serial:
            log.error("outbox/ocsp: the file of serial %x is not its OCSP response", serial)
            return OcspAnswer(INTERNAL_ERROR, "internalError", serial)
        if response.issuer_key_hash != issuer.keys.key_hash():
            # Serials are unique across our issuers: this one is another issuer's.
            return OcspAnswer(UNAUTHORIZED, "unauthorized", serial)
        now = self.clock()
        if now >= response.next_update:
            return self._stale(serial, now)
        return OcspAnswer(response.der, response.status, serial, response)

    def _stale(self, serial: int, now: datetime) -> OcspAnswer:
        if self._expired(serial, now):
            return OcspAnswer(UNAUTHORIZED, "unauthorized", serial)
        self._on_stale(serial)
        return OcspAnswer(TRY_LATER, "tryLater", serial)

    def _expired(self, serial: int, now: datetime) -> bool:
        end = self.serials.end_of(serial)
        return end is not None and end < now.timestamp()

    async def _not_signed(self, serial: int) -> OcspAnswer:
        """No response file: issued moments ago (tryLater), or not ours (unauthorized)."""
        if self.serials.end_of(serial) is None and self.serials.changed():
            try:
                await self._refresh()
            except OSError as exc:
                log.error("ledger.csv: %s", exc)
                return OcspAnswer(TRY_LATER, "tryLater", serial)
        end = self.serials.end_of(serial)
        if end is None or self._expired(serial, self.clock()):
            return OcspAnswer(UNAUTHORIZED, "unauthorized", serial)
        return OcspAnswer(TRY_LATER, "tryLater", serial)

    def read_serials(self) -> asyncio.Future[None]:
        """Read the ledger's news in a thread (at start, and on a miss when it changed);
        requests that miss meanwhile wait for the same read."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(asyncio.to_thread(self.serials.refresh))
            self._refreshing.add_done_callback(_log_failure)
        return self._refreshing

    async def _refresh(self) -> None:
        await asyncio.shield(self.read_serials())


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and (error := done.exception()) is not None:
        log.error("ledger.csv could not be read: %s", error)
