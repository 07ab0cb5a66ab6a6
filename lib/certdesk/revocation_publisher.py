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
from pathlib import Path

from cryptography import x509

from .authority import CertificateAuthority
from .clock import format_utc, now_utc, parse_utc
from .config import Config
from .fsutil import (
    atomic_write,
    make_public_dir,
    remove_asides,
    rename_into_place,
    sync_data,
    write_aside,
)
from .home import Home
from .issuers import Issuers
from .outbox import Outbox
from .publication import FIRST_ISSUER
from .reasons import Motivazione
from .revocation import (
    OcspJob,
    RevokedEntry,
    crl_to_pem,
    revoked_certificate,
    sign_crl,
    sign_ocsp_job,
)
from .store import OcspRow, Store

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
    """The CRL and the OCSP responses of every live issuing CA (``issuers``): each issuer
    signs its own CRL (``outbox/ca/`` for the first, ``outbox/ca/<name>/`` for later ones)
    with the certificates it signed, and the responses for them."""

    def __init__(
        self,
        home: Home,
        config: Config,
        ca: CertificateAuthority,
        store: Store,
        *,
        sign_ocsp: Callable[[Sequence[OcspJob]], list[bytes]] | None = None,
        issuers: Issuers | None = None,
    ) -> None:
        """``sign_ocsp`` signs a batch of responses (the engine's signing processes); by
        default they are signed here, one after the other. ``issuers``: every issuing CA
        of the home (by default ``ca`` alone)."""
        self.home = home
        self.config = config
        self.ca = ca
        self.store = store
        self.issuers = issuers or Issuers(home, config, ca)
        self._sign = sign_ocsp or self._sign_here
        self.outbox = Outbox.of(home)
        self._entries: dict[str, CrlEntries] = {}

    def _sign_here(self, jobs: Sequence[OcspJob]) -> list[bytes]:
        issuers = self.issuers
        return [sign_ocsp_job(j, issuer_cert=(ca := issuers.get(j.issuer)).issuing_cert,
                              issuer_key=ca.issuing_key) for j in jobs]  # fmt: skip

    def _entries_of(self, issuer: str) -> CrlEntries:
        return self._entries.setdefault(issuer, CrlEntries())

    def crl_exists(self) -> bool:
        """Whether every live issuer's CRL is published."""
        now = now_utc()
        return all(self.outbox.issuer(ca.name).crl.exists() for ca in self.issuers.live(now))

    def publish_crl_if_due(self, *, force: bool = False, now: datetime | None = None) -> bool:
        """Each live issuer's CRL that is due (or missing, or ``force``); True if any."""
        now = now or now_utc()
        published = False
        for ca in self.issuers.live(now):
            if force or self._crl_due(ca.name, now):
                self._publish_crl(ca, now)
                published = True
        return published

    def _crl_due(self, issuer: str, now: datetime) -> bool:
        next_update_text = self.store.meta(_next_update_key(issuer))
        if not next_update_text or not self.outbox.issuer(issuer).crl.exists():
            return True
        period = timedelta(hours=self.config.crl.next_update_hours)
        return now >= parse_utc(next_update_text) - period * CRL_REFRESH_FRACTION

    def publish_crl(self, now: datetime) -> None:
        for ca in self.issuers.live(now):
            self._publish_crl(ca, now)

    def _publish_crl(self, ca: CertificateAuthority, now: datetime) -> None:
        # Expired certificates leave the CRL (the store's query drops them).
        rows = self.store.revoked_entries(valid_at=now, issuer=ca.name)
        revoked = self._entries_of(ca.name).build(rows)
        next_update = now + timedelta(hours=self.config.crl.next_update_hours)
        with self.store.transaction() as txn:
            # One counter for every issuer: each issuer's CRLs still number upwards.
            number = txn.next_crl_number()
            txn.set_meta(_next_update_key(ca.name), format_utc(next_update))
        der = sign_crl(
            issuer_cert=ca.issuing_cert,
            issuer_key=ca.issuing_key,
            revoked=revoked,
            crl_number=number,
            this_update=now,
            next_update=next_update,
        )
        files = self.outbox.issuer(ca.name)
        _ensure_issuer_folder(files.folder, self.outbox.ca)
        atomic_write(files.crl, der, public=True)
        atomic_write(files.crl_pem, crl_to_pem(der), public=True)

    def prepare_crl(self, *, limit: int, now: datetime | None = None) -> int:
        """Build ahead up to ``limit`` entries of the next CRLs (idle work after a start);
        returns how many rows it read, 0 once they are all built."""
        now = now or now_utc()
        for ca in self.issuers.live(now):
            entries = self._entries_of(ca.name)
            if entries.complete:
                continue
            rows = list(
                self.store.revoked_entries(
                    valid_at=now, issuer=ca.name, after=entries.added_up_to, limit=limit
                )
            )
            entries.add(rows)
            if len(rows) < limit:
                entries.complete = True
            if rows:
                return len(rows)
        return 0

    def refresh_ocsp(self, *, limit: int, now: datetime | None = None) -> int:
        """Sign OCSP responses that are missing or going stale, at most ``limit`` of them."""
        now = now or now_utc()
        return self._sign_ocsp(self.store.ocsp_due(now + OCSP_REFRESH_MARGIN, limit), now)

    def publish_ocsp(self, id_operazioni: Sequence[str], *, now: datetime | None = None) -> int:
        """Sign the responses of these certificates now (a cancellation, before its receipt)."""
        return self._sign_ocsp(self.store.ocsp_rows(id_operazioni), now or now_utc())

    def _sign_ocsp(self, rows: Sequence[OcspRow], now: datetime) -> int:
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
                issuer=emittente,  # the issuer that signed the certificate answers for it
            )
            for _id_op, cert_der, stato, revoked, motivazione, _seriale, emittente in rows
        ]
        responses = self._sign(jobs)
        # One durability barrier for the batch: all written aside, synced at once, renamed.
        make_public_dir(self.outbox.ocsp, parents=True)
        pairs: list[tuple[str, str]] = []
        try:
            for row, response in zip(rows, responses, strict=True):
                final = self.outbox.ocsp_response_fspath(int(row[5], 16))
                pairs.append((write_aside(final, response, public=True), final))
            sync_data([aside for aside, _ in pairs])
            rename_into_place(pairs)
        except BaseException:
            remove_asides(pairs)
            raise
        until = format_utc(next_update)
        with self.store.transaction() as txn:
            txn.set_ocsp_until([(row[0], until) for row in rows])
        return len(rows)


def _ensure_issuer_folder(folder: Path, ca: Path) -> None:
    """A later issuer's folder in ``outbox/ca/``; never ``outbox/ca/`` itself, nor its
    parents: a daemon whose outbox/ was replaced creates nothing in another folder."""
    if folder != ca:
        make_public_dir(folder)


def _next_update_key(issuer: str) -> str:
    """The store's mark of an issuer's CRL nextUpdate (the first's keeps its old name)."""
    return "crl_next_update" if issuer == FIRST_ISSUER else f"crl_next_update:{issuer}"
