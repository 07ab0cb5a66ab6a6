"""What every operation works with: the home, the CA, the store, the signer, the outbox,
the archive of originals."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..archive import Archive
from ..authority import CertificateAuthority
from ..config import Config
from ..home import Home
from ..issuers import Issuers
from ..outbox_ledger import refresh_ledger
from ..publish import Publisher
from ..revocation_publisher import RevocationPublisher
from ..signing import Signer
from ..store import Store

__all__ = ["Parts"]

log = logging.getLogger("certdesk")


@dataclass
class Parts:
    """One per engine, shared by its operations. ``signer`` is read at each use, so a
    replaced signer (a test's failing one) is the one used."""

    home: Home
    config: Config
    ca: CertificateAuthority
    store: Store
    signer: Signer
    publisher: Publisher
    revocation: RevocationPublisher
    clock: Callable[[], datetime]
    issuers: Issuers
    archive: Archive = field(init=False)  # the packs of originals, on the same store
    # The daemon's warnings (``upkeep.check_issuer_validity``): {"codice", "messaggio"}.
    warnings: list[dict[str, str]] = field(default_factory=list)
    # A rollover found (maybe while deciding) whose files are not published yet.
    unpublished_issuers: bool = False

    def __post_init__(self) -> None:
        self.archive = Archive(self.home, self.store, self.clock)

    def issuer_for(self, now: datetime) -> CertificateAuthority:
        """The issuing CA that signs what is decided at ``now``, after reading the store's
        list again: a ``certdesk rollover`` reaches a running daemon at its next chunk."""
        self.refresh_issuers()
        return self.issuers.active(now)

    def publish_issuers(self, *, every: bool = False) -> None:
        """``outbox/ca/`` for every live issuer: the ones not published yet (a rollover
        the daemon just found), or with ``every`` all of them (a start, a republish)."""
        for ca in self.issuers.live(self.clock()):
            files = self.publisher.outbox.issuer(ca.name)
            if every or not files.certificate.exists():
                self.publisher.write_ca(ca.root_pem(), ca.issuing_pem(), ca.name)
        self.unpublished_issuers = False

    def refresh_issuers(self) -> bool:
        """Take the issuers the store lists; True when a rollover added one."""
        added = self.issuers.update(self.store.issuers())
        self.unpublished_issuers |= bool(added)
        for entry in added:
            log.info("new issuing CA %s (certdesk rollover): it signs new certificates from %s",
                     entry.name, entry.active_from.isoformat())  # fmt: skip
        return bool(added)

    def chunk_size(self) -> int:
        """Requests per transaction and signing round trip (``[daemon] batch_size``):
        enough to amortise the commit and the durability barrier, small enough that the
        workers never wait long for the next."""
        return max(1, self.config.daemon.batch_size)

    def refresh_ledger(
        self, changed: Sequence[str] | None = None, *, release_old: bool = True
    ) -> None:
        """Bring ledger.csv up to date (the changed rows, or all of it), then say so
        (``outbox_ledger.refresh_ledger``). Without ``release_old`` the caller frees the
        replaced file later (after its receipts)."""
        refresh_ledger(self.publisher, self.store, changed, release_old=release_old)
        # the columnar copy too, so that a receipt's change shows in the panels at once
        self.publisher.columnar.catch_up(self.store)

    def catch_up_columnar(self) -> int:
        """Bring ``outbox/ledger.parquet/`` up to the store (``outbox_columnar``)."""
        return self.publisher.columnar.catch_up(self.store)
