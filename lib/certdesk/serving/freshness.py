"""The health endpoint: is what relying parties get fresh? (for monitoring)

- the CRLs: each live issuer's (the first's, and after a rollover every later one's
  whose certificate has not ended) published, its nextUpdate not passed (read at each
  request); ``crl`` is the first issuer's, ``crls`` every live issuer's by name;
- the OCSP responses: the daemon re-signs each at half its validity, so the ones signed
  longest ago go stale first. A scan of ``outbox/ocsp/`` (one stat a file: about a
  second per million responses, in a thread, at most once per ``SCAN_SECONDS``, only when
  someone asks) finds the ``OLDEST_CHECKED`` written longest ago, and reads their
  nextUpdate. Expired certificates are left out (nobody re-signs them; the responder
  answers ``unauthorized`` for them once their last response is stale);
- and whether the responder refused a stale response lately (any response, oldest or not).

The answer is 200 when everything is fresh, 503 otherwise, so that a plain HTTP check
alarms on it.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..clock import format_utc
from ..outbox import Outbox
from .issuers import IssuerDirectory
from .published import CrlFile, read_response, response_of
from .serials import SerialIndex

__all__ = ["Freshness"]

SCAN_SECONDS = 30.0
OLDEST_CHECKED = 16
# A stale response refused this recently keeps the service "stale".
STALE_MEMORY = timedelta(minutes=5)


@dataclass
class _Scan:
    responses: int
    oldest_next_update: datetime | None
    stale: int
    damaged: int


@dataclass
class Freshness:
    outbox: Outbox
    issuers: IssuerDirectory
    serials: SerialIndex
    clock: Callable[[], datetime]
    refused: int = 0
    last_refused: tuple[datetime, int] | None = None
    _scan: tuple[float, _Scan] | None = field(default=None, repr=False)
    _scanning: asyncio.Future[_Scan] | None = field(default=None, repr=False)

    def refused_stale(self, serial: int) -> None:
        """The responder did not serve a response past its nextUpdate."""
        self.refused += 1
        self.last_refused = (self.clock(), serial)

    async def report(self) -> tuple[bool, dict[str, object]]:
        now = self.clock()
        crls = self._crls(now)
        crl_fresh = all(c["fresh"] for c in crls.values())
        scan = await self._responses()
        recent = self.last_refused is not None and now - self.last_refused[0] < STALE_MEMORY
        ocsp_fresh = scan.stale == 0 and scan.damaged == 0 and not recent
        document: dict[str, object] = {
            "status": "fresh" if crl_fresh and ocsp_fresh else "stale",
            "checked_at": format_utc(now),
            "crl": crls[self.issuers.first.name],
            "crls": crls,
            "ocsp": {
                "responses": scan.responses,
                "oldest_next_update": _text(scan.oldest_next_update),
                "stale_among_oldest": scan.stale,
                "damaged_among_oldest": scan.damaged,
                "stale_refused": self.refused,
                "last_stale_refused": _text(self.last_refused[0] if self.last_refused else None),
                "fresh": ocsp_fresh,
            },
        }
        return crl_fresh and ocsp_fresh, document

    def _crls(self, now: datetime) -> dict[str, dict[str, object]]:
        """Each live issuer's CRL: the first's always; a later one's while its certificate
        has not ended (after that the daemon stops refreshing it, and nobody needs it)."""
        crls: dict[str, dict[str, object]] = {}
        for issuer in self.issuers.all():
            certificate = issuer.certificate.read()
            first = issuer is self.issuers.first
            if not first and (certificate is None or certificate.not_after <= now):
                continue
            crl = issuer.crl.read()
            crls[issuer.name] = _crl_state(crl, now)
        return crls

    async def _responses(self) -> _Scan:
        if self._scan is not None and time.monotonic() - self._scan[0] < SCAN_SECONDS:
            return self._scan[1]
        if self._scanning is None or self._scanning.done():
            self._scanning = asyncio.ensure_future(asyncio.to_thread(self._scan_now))
        scan = await asyncio.shield(self._scanning)
        self._scan = (time.monotonic(), scan)
        return scan

    def _scan_now(self) -> _Scan:
        now = self.clock()
        counted = [0]
        oldest = heapq.nsmallest(OLDEST_CHECKED, self._live(now.timestamp(), counted))
        stale = damaged = 0
        next_updates = []
        for _mtime, serial in oldest:
            data = read_response(self.outbox, serial)
            response = response_of(data) if data is not None else None
            if data is None:
                continue  # renamed over meanwhile
            if response is None:
                damaged += 1
                continue
            next_updates.append(response.next_update)
            stale += now >= response.next_update
        return _Scan(counted[0], min(next_updates, default=None), stale, damaged)

    def _live(self, now: float, counted: list[int]) -> Iterator[tuple[float, int]]:
        """(modification time, serial) of each response of a certificate not expired."""
        try:
            entries = os.scandir(self.outbox.ocsp)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") or not name.endswith(".der"):
                    continue  # a write in progress
                try:
                    serial = int(name[:-4], 16)
                    end = self.serials.end_of(serial)
                    if end is not None and end < now:
                        continue
                    mtime = entry.stat().st_mtime
                except (ValueError, FileNotFoundError):
                    continue
                counted[0] += 1
                yield mtime, serial


def _crl_state(crl: CrlFile | None, now: datetime) -> dict[str, object]:
    fresh = crl is not None and crl.next_update is not None and now < crl.next_update
    return {
        "published": crl is not None,
        "this_update": _text(crl.this_update if crl else None),
        "next_update": _text(crl.next_update if crl else None),
        "fresh": fresh,
    }


def _text(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None
