"""Issuing: a run of requests (``*.csr``) through the pipeline, chunk by chunk.

The crash-safe order of every chunk (a ``kill -9`` anywhere leaves a state that
``recovery`` finishes, with no second certificate):

1. its inputs were claimed (renamed into ``state/work/``): they cannot be taken twice;
2. each is read here and checked (``policy.inspect_request``: in the workers if there
   are two or more, see ``deciding.check_chunk``), then
   decided (``issuance.decide_request``); one transaction records every input with its decision:
   ``IN_GENERAZIONE`` with the serial and validity reserved for its certificate, or
   ``RIFIUTATO`` with its receipt;
3. the accepted ones are signed with the reserved serials, and one transaction commits
   ``ATTIVATO`` with their receipts;
4. certificates, ledger and journal rows are made durable, then the receipts appear;
5. the originals are appended to the day's packs in ``state/archive/`` or
   ``state/quarantine/`` (``archive``), made durable by step 4's barrier, recorded with
   "done" in the next commit; then their folders in ``state/work/`` go.

The workers sign chunks k and k+1 and check chunks k+2 and k+3, in that order, while this
process reads chunk k+3; one transaction then commits ``ATTIVATO`` for chunk k, the
decisions of chunk k+2 and where the originals of chunk k-1 are kept, with "done"; the
workers get chunk k+2 to sign, and chunk k is published. This process only claims, reads,
decides with the store, commits and publishes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..archive import Appended
from ..authority import IssuedCertificate, leaf_serial
from ..codes import refusal
from ..faults import machine_fault
from ..intake import Claim
from ..publication import FIRST_ISSUER
from ..receipts import Outcome, Receipt, Tipo, refusal_receipt, request_receipt
from ..records import RequestRecord
from ..signing import PendingSignatures
from ..states import Stato
from ..store import Activation, Transaction
from .deciding import Accepted, Checking, Decided, Refused, check_chunk, decide_chunk, sign_job
from .feed import Feed
from .parts import Parts

__all__ = ["issue", "sign_and_activate"]

log = logging.getLogger("certdesk")

# Chunks in flight: one being signed while the next waits its turn in the pool, so a
# worker never idles while this process publishes (make bench).
_PIPELINE_DEPTH = 2


@dataclass
class _Flight:
    """A chunk whose decisions are committed and whose signatures are coming."""

    decided: list[Decided]
    signatures: PendingSignatures | None = None

    @property
    def accepted(self) -> list[Accepted]:
        return [d for d in self.decided if isinstance(d, Accepted)]


@dataclass
class _Settled:
    """A signed chunk after its ATTIVATO commit: what to publish."""

    receipts: list[tuple[Claim, Receipt]]
    rows: list[RequestRecord]  # ledger rows, in IdOperazione order
    certificates: list[tuple[str, bytes, str]] = field(default_factory=list)  # id, PEM, canale


# -- signing and activating ------------------------------------------------------------------
def _signatures(
    signatures: PendingSignatures | None, count: int
) -> Sequence[IssuedCertificate | None]:
    if not count or signatures is None:
        return [None] * count
    try:
        return signatures.result()
    except Exception as exc:
        if machine_fault(exc):
            raise  # the requests stay IN_GENERAZIONE and are signed after the pause
        log.exception("signing failed for a batch of %d requests", count)
        return [None] * count


def _activate(
    parts: Parts,
    txn: Transaction,
    entries: Sequence[tuple[RequestRecord, str]],
    issued: Sequence[IssuedCertificate | None],
) -> tuple[list[RequestRecord], list[tuple[str, bytes, str]], list[Receipt]]:
    """In ``txn``: ATTIVATO (or RIFIUTATO when signing failed) and the receipt of each
    (request, claim); the settled records, the certificates and the receipts."""
    now = parts.clock()
    settled: list[RequestRecord] = []
    certificates: list[tuple[str, bytes, str]] = []
    receipts: list[Receipt] = []
    activations: list[Activation] = []
    for (record, _claim), cert in zip(entries, issued, strict=True):
        if cert is None:
            txn.fail(record.id_operazione, now=now, esito="FIRMA_NON_RIUSCITA")
            # As ``fail`` leaves the store: the reserved serial is released.
            updated = replace(
                record, stato=Stato.RIFIUTATO, esito="FIRMA_NON_RIUSCITA", seriale="",
                data_scadenza=None,
            )  # fmt: skip
            error = refusal("FIRMA_NON_RIUSCITA")
            receipt = refusal_receipt(record.file_origine, Tipo.RICHIESTA, error, updated)
        else:
            activations.append(
                Activation(
                    id_op=record.id_operazione, file_origine=record.file_origine,
                    seriale=cert.serial_hex, impronta_sha256=cert.sha256, cert_der=cert.der,
                    canale=record.canale,
                )
            )  # fmt: skip
            updated = replace(
                record, stato=Stato.ATTIVATO, esito="OK", seriale=cert.serial_hex,
                data_scadenza=cert.not_after, impronta_sha256=cert.sha256,
            )  # fmt: skip
            certificates.append((record.id_operazione, cert.pem, record.canale))
            receipt = request_receipt(record.file_origine, updated)
        settled.append(updated)
        receipts.append(receipt)
    txn.activate_many(now, activations)
    claims = [claim for _record, claim in entries]
    txn.set_receipts([(c, r.to_document()) for c, r in zip(claims, receipts, strict=True)])
    return settled, certificates, receipts


def _activate_flight(
    parts: Parts, txn: Transaction, flight: _Flight, issued: Sequence[IssuedCertificate | None]
) -> _Settled:
    """In ``txn``: ATTIVATO and the receipts of a signed chunk."""
    accepted = flight.accepted
    entries = [(a.record, a.item.claim) for a in accepted]
    settled, certificates, receipts = _activate(parts, txn, entries, issued)
    by_claim = {a.item.claim: r for a, r in zip(accepted, receipts, strict=True)}
    refused = [d.record for d in flight.decided if isinstance(d, Refused)]
    out: list[tuple[Claim, Receipt]] = []
    for decided in flight.decided:
        if isinstance(decided, Refused):
            receipt = decided.receipt
        elif isinstance(decided, Accepted):
            receipt = by_claim[decided.item.claim]
        else:  # a repeat points at a request that may have been settled in this chunk
            current = parts.store.get(decided.of.id_operazione)
            assert current is not None, decided.of.id_operazione
            receipt = request_receipt(decided.item.name, current, repeated=True)
            txn.set_receipt(decided.item.claim, receipt.to_document())
        out.append((decided.item, receipt))
    rows = sorted(refused + settled, key=lambda r: r.id_operazione)
    return _Settled(out, rows, certificates)


def _publish(parts: Parts, settled: _Settled) -> tuple[list[Outcome], Appended]:
    """The originals appended to their packs; certificates, ledger, journal and packs
    durable at once, then the receipts. The caller records the originals."""
    appended = parts.archive.append([(item, r.quarantined) for item, r in settled.receipts])
    parts.publisher.publish_batch(
        parts.store,
        certificates=settled.certificates,
        ledger=settled.rows,
        receipts=[(item, r.to_document()) for item, r in settled.receipts],
        also_durable=appended.paths,
        new_names_in=appended.new_names,
    )
    return [receipt.outcome for _item, receipt in settled.receipts], appended


def _record_kept(txn: Transaction, appended: Appended | None) -> None:
    """In ``txn``: where a published chunk's originals are, and its inputs "done"."""
    if appended is not None:
        txn.record_originals(appended.originals)
        txn.mark_done(list(appended.claims))


# -- the pipeline ----------------------------------------------------------------------------
def issue(parts: Parts, feed: Feed, published: Callable[[list[Outcome]], None]) -> None:
    """The feed's run of requests in chunks, pipelined, one transaction per chunk (the
    module's docstring gives the order)."""
    size = parts.chunk_size()
    first = feed.requests(max(1, size // 4))  # a small first chunk starts the workers sooner
    checking: deque[Checking] = deque([check_chunk(parts, first)] if first else [])
    in_flight: deque[_Flight] = deque()
    kept: Appended | None = None  # originals appended, recorded with the next commit
    reading = bool(first)  # once the run has ended (a stop, the end, another kind of input)
    while checking or in_flight:  # ... only drain
        if reading and (chunk := feed.requests(size)):
            checking.append(check_chunk(parts, chunk))  # checked while this one is decided
        else:
            reading = False
        deciding = checking.popleft() if checking else None
        completing = None
        if in_flight and (len(in_flight) >= _PIPELINE_DEPTH or deciding is None):
            completing = in_flight.popleft()
        checked = deciding.result(parts) if deciding is not None else []
        issued = _signatures(completing.signatures, len(completing.accepted)) if completing else []
        settled = None
        with parts.store.transaction() as txn:
            if completing is not None:
                settled = _activate_flight(parts, txn, completing, issued)
            flight = _Flight(decide_chunk(parts, txn, checked)) if deciding else None
            _record_kept(txn, kept)
        if kept is not None:
            parts.archive.release(kept)
            kept = None
        if flight is not None:
            flight.signatures = parts.signer.submit([a.job for a in flight.accepted])
            in_flight.append(flight)
        if settled is not None:
            outcomes, kept = _publish(parts, settled)
            published(outcomes)
    if kept is not None:
        with parts.store.transaction() as txn:
            _record_kept(txn, kept)
        parts.archive.release(kept)


def sign_and_activate(parts: Parts, records: Sequence[RequestRecord]) -> list[RequestRecord]:
    """Recovery: sign requests left IN_GENERAZIONE, commit ATTIVATO with their receipts,
    and write their certificates durably (the caller writes the receipts)."""
    if not records:
        return []
    records = _reserve_missing_serials(parts, records)
    jobs = []
    for record in records:
        csr_der = parts.store.csr_der(record.id_operazione)
        assert csr_der is not None
        # Checked when it was accepted: only the public key is needed now, no re-check.
        spki = (
            x509.load_der_x509_csr(csr_der)
            .public_key()
            .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        )
        jobs.append(sign_job(record, spki))
    issued = _signatures(parts.signer.submit(jobs), len(jobs))
    entries = [(r, parts.store.claim_of(r.id_operazione)) for r in records]
    with parts.store.transaction() as txn:
        settled, certificates, _ = _activate(parts, txn, entries, issued)
    parts.publisher.write_certificates(certificates)
    return settled


def _reserve_missing_serials(
    parts: Parts, records: Sequence[RequestRecord]
) -> Sequence[RequestRecord]:
    """Rows recorded by a version that signed before reserving: reserve now."""
    if all(r.seriale for r in records):
        return records
    reserved = [
        replace(
            r,
            seriale=r.seriale or format(leaf_serial(), "x"),
            data_scadenza=r.data_scadenza
            or parts.issuers.get(r.emittente or FIRST_ISSUER).leaf_not_after(r.data_richiesta),
        )
        for r in records
    ]
    with parts.store.transaction() as txn:
        txn.reserve_serials(
            [(r.id_operazione, r.seriale, r.data_scadenza) for r in reserved
             if r.data_scadenza is not None]
        )  # fmt: skip
    return reserved
