"""Publishing revocation status: the CRL and pre-signed OCSP responses in ``outbox/``.

The CRL is rebuilt in one pass from the store at every cancellation and before its
nextUpdate; entries of certificates already expired are dropped (RFC 5280 5.1.2.6
allows it, and it keeps the CRL from growing forever). OCSP responses for new
certificates are signed when the daemon is idle, in short slices by the signing processes,
so issuance keeps its full speed and a new input never waits behind them; a cancellation
signs its responses at once, before its receipt. Each batch of responses is made durable
with one barrier (written aside, synced together, renamed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from cryptography import x509

from .authority import CertificateAuthority
from .clock import format_utc, now_utc, parse_utc
from .config import Config
from .fsutil import atomic_write, remove_asides, rename_into_place, sync_data, write_aside
from .home import Home
from .outbox import Outbox
from .reasons import Motivazione
from .revocation import (
    OcspJob,
    RevokedEntry,
    crl_to_pem,
    revoked_certificate,
    sign_crl,
    sign_ocsp_job,
)
from .store import Store

__all__ = ["OCSP_VALIDITY", "CrlEntries", "RevocationPublisher"]

OCSP_VALIDITY = timedelta(days=7)
# Re-sign once half the validity has passed, as RFC 5019 section 6 suggests.
OCSP_REFRESH_MARGIN = OCSP_VALIDITY / 2
# Re-issue the CRL well before nextUpdate, so relying parties never hold a stale one.
CRL_REFRESH_FRACTION = 0.5


class CrlEntries:
    """The CRL's entries built so far, by serial, so that the CRL re-issued for one more
    cancellation builds one entry instead of all of them (building is most of the CRL's
    cost: ~9 µs an entry, against ~2 µs to sign and encode it).

    A cancelled certificate's entry never changes (ANNULLATO is final), so an entry is
    kept as long as it stays in the CRL. Up to ``limit`` entries are kept (~360 bytes
    each); a longer CRL is built whole each time, so that memory stays bounded. After a
    start the daemon builds them ahead, in idle slices (``add``), so that even its first
    cancellation does not pay for all of them.
    """

    def __init__(self, limit: int = 250_000) -> None:
        self.limit = limit
        self._built: dict[str, x509.RevokedCertificate] = {}
        # Nothing left to build ahead: every entry is here, or the CRL is too long to keep.
        self.complete = False
        self.added_up_to = ("", "")  # (data_annullamento, seriale) of the last one added

    def __len__(self) -> int:
        return len(self._built)

    def build(self, rows: Iterable[tuple[str, str, str]]) -> list[x509.RevokedCertificate]:
        """The entries of (seriale, data_annullamento, motivazione) rows, in their order."""
        before = self._built
        kept: dict[str, x509.RevokedCertificate] = {}
        revoked: list[x509.RevokedCertificate] = []
        for seriale, revoked_at, motivazione in rows:
            entry = before.get(seriale)
            if entry is None:
                entry = _entry(seriale, revoked_at, motivazione)
            # Two entries with one serial would make the CRL ambiguous; the store's
            # UNIQUE serial forbids it, and this keeps a broken store from signing one.
            if kept.setdefault(seriale, entry) is not entry:
                raise ValueError(f"serial {seriale} appears twice in the CRL entries")
            revoked.append(entry)
        self._built = kept if len(kept) <= self.limit else {}
        self.complete = True
        return revoked

    def add(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Build ahead the entries of rows read in order (idle work); nothing past the limit."""
        for seriale, revoked_at, motivazione in rows:
            if len(self._built) >= self.limit:
                self._built, self.complete = {}, True  # too long to keep: never mind
                return
            if seriale not in self._built:
                self._built[seriale] = _entry(seriale, revoked_at, motivazione)
            self.added_up_to = (revoked_at, seriale)


def _entry(seriale: str, revoked_at: str, motivazione: str) -> x509.RevokedCertificate:
    return revoked_certificate(
        RevokedEntry(
            serial=int(seriale, 16),
            revoked_at=parse_utc(revoked_at),
            reason=Motivazione(motivazione).crl_reason,
        )
    )


class RevocationPublisher:
    def __init__(
        self,
        home: Home,
        config: Config,
        ca: CertificateAuthority,
        store: Store,
        *,
        sign_ocsp: Callable[[Sequence[OcspJob]], list[bytes]] | None = None,
    ) -> None:
        """``sign_ocsp`` signs a batch of responses (the engine's signing processes); by
        default they are signed here, one after the other."""
        self.home = home
        self.config = config
        self.ca = ca
        self.store = store
        self._sign = sign_ocsp or self._sign_here
        self.outbox = Outbox.of(home)
        self._entries = CrlEntries()

    def _sign_here(self, jobs: Sequence[OcspJob]) -> list[bytes]:
        issuer_cert, issuer_key = self.ca.issuing_cert, self.ca.issuing_key
        return [sign_ocsp_job(j, issuer_cert=issuer_cert, issuer_key=issuer_key) for j in jobs]

    def crl_exists(self) -> bool:
        return self.outbox.crl.exists()

    def publish_crl_if_due(self, *, force: bool = False, now: datetime | None = None) -> bool:
        now = now or now_utc()
        period = timedelta(hours=self.config.crl.next_update_hours)
        next_update_text = self.store.meta("crl_next_update")
        if not force and next_update_text and self.crl_exists():
            due = parse_utc(next_update_text) - period * CRL_REFRESH_FRACTION
            if now < due:
                return False
        self.publish_crl(now)
        return True

    def publish_crl(self, now: datetime) -> None:
        # Expired certificates leave the CRL (the store's query drops them).
        revoked = self._entries.build(self.store.revoked_entries(valid_at=now))
        next_update = now + timedelta(hours=self.config.crl.next_update_hours)
        with self.store.transaction() as txn:
            number = txn.next_crl_number()
            txn.set_meta("crl_next_update", format_utc(next_update))
        der = sign_crl(
            issuer_cert=self.ca.issuing_cert,
            issuer_key=self.ca.issuing_key,
            revoked=revoked,
            crl_number=number,
            this_update=now,
            next_update=next_update,
        )
        atomic_write(self.outbox.crl, der)
        atomic_write(self.outbox.crl_pem, crl_to_pem(der))

    def prepare_crl(self, *, limit: int, now: datetime | None = None) -> int:
        """Build ahead up to ``limit`` entries of the next CRL (idle work after a start);
        returns how many rows it read, 0 once they are all built."""
        entries = self._entries
        if entries.complete:
            return 0
        rows = list(
            self.store.revoked_entries(
                valid_at=now or now_utc(), after=entries.added_up_to, limit=limit
            )
        )
        entries.add(rows)
        if len(rows) < limit:
            entries.complete = True
        return len(rows)

    def refresh_ocsp(self, *, limit: int, now: datetime | None = None) -> int:
        """Sign OCSP responses that are missing or going stale, at most ``limit`` of them."""
        now = now or now_utc()
        return self._sign_ocsp(self.store.ocsp_due(now + OCSP_REFRESH_MARGIN, limit), now)

    def publish_ocsp(self, id_operazioni: Sequence[str], *, now: datetime | None = None) -> int:
        """Sign the responses of these certificates now (a cancellation, before its receipt)."""
        return self._sign_ocsp(self.store.ocsp_rows(id_operazioni), now or now_utc())

    def _sign_ocsp(
        self, rows: Sequence[tuple[str, bytes, str, str, str, str]], now: datetime
    ) -> int:
        if not rows:
            return 0
        next_update = now + OCSP_VALIDITY
        jobs = [
            OcspJob(
                cert_der=cert_der,
                revoked_at=parse_utc(revoked) if stato == "ANNULLATO" else None,
                reason=Motivazione(motivazione).crl_reason if stato == "ANNULLATO" else None,
                this_update=now,
                next_update=next_update,
            )
            for _id_op, cert_der, stato, revoked, motivazione, _seriale in rows
        ]
        responses = self._sign(jobs)
        # One durability barrier for the batch: all written aside, synced at once, renamed.
        self.outbox.ocsp.mkdir(parents=True, exist_ok=True)
        pairs: list[tuple[str, str]] = []
        try:
            for row, response in zip(rows, responses, strict=True):
                final = self.outbox.ocsp_response_fspath(int(row[5], 16))
                pairs.append((write_aside(final, response), final))
            sync_data([aside for aside, _ in pairs])
            rename_into_place(pairs)
        except BaseException:
            remove_asides(pairs)
            raise
        until = format_utc(next_update)
        with self.store.transaction() as txn:
            txn.set_ocsp_until([(row[0], until) for row in rows])
        return len(rows)
