"""What every operation works with: the home, the CA, the store, the signer, the outbox,
the archive of originals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..archive import Archive
from ..authority import CertificateAuthority
from ..config import Config
from ..home import Home
from ..outbox_ledger import refresh_ledger
from ..publish import Publisher
from ..revocation_publisher import RevocationPublisher
from ..signing import Signer
from ..store import Store

__all__ = ["Parts"]


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
    archive: Archive = field(init=False)  # the packs of originals, on the same store

    def __post_init__(self) -> None:
        self.archive = Archive(self.home, self.store, self.clock)

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
