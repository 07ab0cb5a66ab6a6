"""Upkeep: the work time asks for, between inputs, and rebuilding the outbox.

- ``sweep_expired``: certificates past their DataScadenza become SCADUTO (one commit, then
  their ledger rows, journal rows and a CRL without them);
- ``periodic``: expiry, the CRL before its nextUpdate, a checkpoint of the store's WAL,
  the archive's retention (``prune_archive``, once a day);
- ``idle_work``: one slice of tens of milliseconds (OCSP responses missing or going
  stale, then the next CRL's entries), so a new input never waits longer;
- ``catch_up_columnar``: ``outbox/ledger.parquet/`` brought up to the store (the daemon
  calls it when idle, and every few seconds of a backlog);
- ``republish``: every file of ``outbox/`` rebuilt from the store.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..archive_retention import prune
from ..clock import format_utc
from ..codes import message
from ..intake import Claim
from ..issuers import short_of_validity
from .parts import Parts, log

__all__ = [
    "catch_up_columnar",
    "check_issuer_validity",
    "idle_work",
    "periodic",
    "prune_archive",
    "republish",
    "sweep_expired",
]

# CRL entries built ahead per idle slice: tens of milliseconds of work.
_CRL_ENTRIES_SLICE = 2000


def sweep_expired(parts: Parts) -> int:
    now = parts.clock()
    expired = parts.store.expired_active(now)
    if not expired:
        return 0
    with parts.store.transaction() as txn:
        for id_op in expired:
            txn.expire(id_op, now=now)
    parts.refresh_ledger(expired)
    parts.publisher.catch_up_journal(parts.store)
    parts.revocation.publish_crl_if_due(force=True, now=now)
    return len(expired)


def periodic(parts: Parts) -> None:
    sweep_expired(parts)
    parts.refresh_issuers()
    parts.publish_issuers()  # a rollover found since: its certificate and chain
    parts.revocation.publish_crl_if_due(now=parts.clock())  # and its first CRL
    check_issuer_validity(parts)
    prune_archive(parts)
    parts.store.checkpoint()


def check_issuer_validity(parts: Parts) -> list[dict[str, str]]:
    """The warning (``EMITTENTE_IN_SCADENZA``) while the active issuing CA has less
    validity left than a new certificate's: leaves are then cut at its end. Logged when
    it appears; the daemon's heartbeat and the panels show ``parts.warnings``."""
    now = parts.clock()
    ca = parts.issuers.active(now)
    left = short_of_validity(ca, now)
    warnings: list[dict[str, str]] = []
    if left is not None:
        text = message(
            "EMITTENTE_IN_SCADENZA", emittente=ca.name, giorni=left.days,
            scadenza=format_utc(ca.not_after),
        )  # fmt: skip
        warnings.append({"codice": "EMITTENTE_IN_SCADENZA", "messaggio": text})
    if warnings != parts.warnings:
        for warning in warnings:
            log.warning("%s: %s", warning["codice"], warning["messaggio"])
        parts.warnings = warnings
    return warnings


def prune_archive(parts: Parts) -> int:
    """``[archive] retention_days``: packs and folders past it deleted
    (``archive_retention``), once a UTC day, and again while folders are left. Returns
    how many originals went."""
    now = parts.clock()
    day = f"{now:%Y%m%d}"
    if parts.archive.pruned_day == day:
        return 0
    days = parts.config.archive.retention_days
    pruned = prune(parts.home, parts.store, retention_days=days, now=now)
    if not pruned.more:
        parts.archive.pruned_day = day
    return pruned.originals


def idle_work(parts: Parts, *, ahead: bool = True) -> int:
    """OCSP responses due, as many as one signing round trip holds; when none is due and
    ``ahead`` (a daemon that stays), the next CRL's entries not built yet (after a
    start). Returns how much it did; 0 when nothing is left."""
    now = parts.clock()
    # A rollover the daemon found (maybe while deciding): its files before its responses.
    parts.refresh_issuers()
    if parts.unpublished_issuers:
        parts.publish_issuers()
        parts.revocation.publish_crl_if_due(now=now)
    done = parts.revocation.refresh_ocsp(limit=parts.chunk_size(), now=now)
    if not done and ahead:
        done = parts.revocation.prepare_crl(limit=_CRL_ENTRIES_SLICE, now=now)
    return done


def catch_up_columnar(parts: Parts) -> int:
    """The columnar ledger's rows changed since it was last written; 0 when current. The
    daemon's own call (when idle, or during a backlog): loads the writer first if need be."""
    parts.publisher.columnar.prepare()
    return parts.catch_up_columnar()


_OCSP_SLICE = 5000  # responses signed and written per durability barrier


def republish(parts: Parts, *, ocsp_ahead: bool = True) -> dict[str, int]:
    """Rebuild every file of ``outbox/`` from the store (certificates byte for byte).

    Every OCSP response is signed again; without ``ocsp_ahead`` only those of cancelled
    certificates (a relying party must never get tryLater for one), and the valid ones
    are left due for the daemon's idle work, as for a certificate just issued: a restore
    of a million-request home would otherwise sign hundreds of thousands first."""
    publisher, store = parts.publisher, parts.store
    publisher.ensure_layout()
    parts.refresh_issuers()
    parts.publish_issuers(every=True)
    certificates = 0
    publisher.channels.forget(publisher.channels.named(store))
    for id_op, der, canale in store.iter_certificates():
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        publisher.write_certificate(id_op, pem, sync=False, canale=canale)
        certificates += 1
    receipts = 0
    for claim, file, receipt in store.iter_receipts():
        publisher.write_receipt(Claim(claim, file), receipt, sync=False)
        receipts += 1
    publisher.sync_folders()
    parts.refresh_ledger()
    publisher.columnar.rebuild(store)
    publisher.rebuild_journal(store)
    parts.revocation.publish_crl(parts.clock())
    with store.transaction() as txn:
        txn.reset_ocsp()
    if ocsp_ahead:
        while parts.revocation.refresh_ocsp(limit=_OCSP_SLICE, now=parts.clock()):
            pass
    else:
        revoked = store.revoked_ids(parts.clock())
        for start in range(0, len(revoked), _OCSP_SLICE):
            parts.revocation.publish_ocsp(revoked[start:start + _OCSP_SLICE], now=parts.clock())
    return {"certificates": certificates, "receipts": receipts}
