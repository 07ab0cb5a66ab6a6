"""Recovery: after a crash or a pause, finish what was claimed, from the store alone.

``recover`` is the one entry point (the daemon calls it at start and when a pause ends):

1. the outbox's layout, CA files and journal are made whole (``.*.tmp`` asides of a
   killed writer removed, a torn last journal row cut and appended again);
2. requests accepted but not signed are signed with their reserved serials;
3. inputs whose outcome is committed but not published get, in a normal batch's order,
   their certificates, ledger rows, journal rows, CRL and OCSP, then their receipts,
   then their originals into the archive's packs (``archive``: a pack's torn or
   uncommitted tail is cut first);
4. claims never recorded (a kill right after the rename) are processed now;
5. claims recorded and done whose folder in ``state/work/`` was not removed yet (their
   originals are in a pack) are removed, and any other recorded one is archived.

``refuse_internal`` is the last resort for an input a bug failed on, alone.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..codes import refusal
from ..intake import Claim, list_claims
from ..outbox_ledger import ledger_is_current
from ..receipts import Outcome, Receipt, Tipo, refusal_receipt
from ..store import InputRecord
from .cancelling import finish
from .issuing import sign_and_activate
from .parts import Parts
from .processing import process

__all__ = ["finish_interrupted", "outcome_of", "recover", "refuse_internal"]


def recover(parts: Parts) -> list[Outcome]:
    """Finish everything a crash interrupted; make the outbox match the store."""
    publisher = parts.publisher
    parts.archive.forget()  # every pack's end read from the store again
    publisher.ensure_layout()
    publisher.remove_stale_asides()
    parts.refresh_issuers()
    parts.publish_issuers(every=True)
    if publisher.journal_file.has_other_header():  # a home of an older version
        publisher.rebuild_journal(parts.store)
    publisher.catch_up_journal(parts.store)
    if publisher.ledger_file.has_other_header():
        parts.refresh_ledger()
    outcomes = finish_interrupted(parts, at_start=True)
    leftovers = [c for c in list_claims(parts.home) if parts.store.input(c.claim) is None]
    if leftovers:
        outcomes.extend(process(parts, leftovers))
    _settle_left(parts)
    return outcomes


def _settle_left(parts: Parts) -> None:
    """Claims recorded and answered but still in ``state/work/``: a kill after their
    originals were recorded (only their folders go) or before (archived now)."""
    unsettled: list[tuple[Claim, bool]] = []
    for item in list_claims(parts.home):
        settled = parts.store.input(item.claim)
        if settled is None:
            continue
        if parts.store.original(item.claim) is not None:
            parts.archive.release_claims([item])
        else:
            unsettled.append((item, settled.quarantined))
    if unsettled:
        parts.archive.keep(unsettled)


def finish_interrupted(parts: Parts, *, at_start: bool = False) -> list[Outcome]:
    """Finish the inputs whose outcome is committed but not yet published (a crash, or
    a batch that failed half-way). ``at_start``: nothing was published since (see the
    ledger below)."""
    pending = parts.store.pending_generation()
    if pending:
        sign_and_activate(parts, pending)
    unfinished = _unfinished_inputs(parts)
    rows = [record.id_operazione for record in pending]  # maybe not in ledger.csv
    cancelled: list[str] = []
    for record, receipt in unfinished:
        cancelled.extend(receipt.cancelled)
        rows.extend(_republish_certificate(parts, record))
    _catch_up_ledger(parts, rows, at_start=at_start)
    parts.catch_up_columnar()
    parts.publisher.catch_up_journal(parts.store)
    parts.revocation.publish_crl_if_due(
        force=bool(cancelled) or not parts.revocation.crl_exists(), now=parts.clock()
    )
    parts.revocation.publish_ocsp(cancelled, now=parts.clock())
    if not unfinished:
        return []
    return finish(parts, [(Claim(r.claim, r.file), receipt) for r, receipt in unfinished])


def _unfinished_inputs(parts: Parts) -> list[tuple[InputRecord, Receipt]]:
    unfinished = []
    for record in parts.store.pending_inputs():
        if record.receipt is None:
            # A repeat whose receipt was not committed yet: deciding it again is
            # idempotent, so forget the record; its claim is processed afresh.
            with parts.store.transaction() as txn:
                txn.forget_input(record.claim)
            continue
        unfinished.append((record, Receipt.from_document(record.receipt)))
    return unfinished


def _republish_certificate(parts: Parts, record: InputRecord) -> list[str]:
    """ATTIVATO was committed with the receipt, the certificate file maybe not: write it.
    Returns the request's IdOperazione (its ledger row may be missing), if it has one."""
    request = parts.store.request_for_claim(record.claim)
    if request is None:
        return []
    der = parts.store.certificate_der(request.id_operazione)
    if der is not None:
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        parts.publisher.write_certificate(
            request.id_operazione, pem, sync=False, canale=request.canale
        )
    return [request.id_operazione]


def _catch_up_ledger(parts: Parts, rows: list[str], *, at_start: bool) -> None:
    """A full rebuild costs seconds at a million rows: only when a row may be stale (a
    crash mid-update) or there is no ledger. Rows missing after a crash can only be the
    last ones (batches append in IdOperazione order, and a crash ends the appends): they
    are appended. After a batch that failed while the daemon went on, later batches may
    have appended past its rows: they are put in their place."""
    if not ledger_is_current(parts.store, parts.publisher.ledger_file):
        parts.refresh_ledger()
    elif rows and not (at_start and parts.publisher.catch_up_ledger(parts.store)):
        parts.refresh_ledger(rows)


def outcome_of(parts: Parts, item: Claim) -> Outcome | None:
    """The outcome of a claim from its recorded receipt, once it has one."""
    record = parts.store.input(item.claim)
    if record is None or record.receipt is None:
        return None
    return Receipt.from_document(record.receipt).outcome


def refuse_internal(parts: Parts, item: Claim, error: Exception) -> Outcome:
    """Refuse a claim that processing failed on, even alone: receipt ERRORE_INTERNO,
    input quarantined. A claim whose outcome was committed after all keeps it."""
    existing = parts.store.input(item.claim)
    if existing is not None and existing.receipt is not None:
        if not existing.done:
            finish_interrupted(parts)
        return Receipt.from_document(existing.receipt).outcome
    tipo = Tipo.of(item.name)
    # A fault of the machine never gets here (the daemon pauses instead): this is a bug,
    # which the same file dropped again would meet again.
    refused = refusal("ERRORE_INTERNO", "quarantena", errore=type(error).__name__)
    receipt = refusal_receipt(item.name, tipo, refused)
    with parts.store.transaction() as txn:
        txn.forget_input(item.claim)
        txn.record_input(
            claim=item.claim, file=item.name, tipo=tipo.value, sha256="", now=parts.clock()
        )
        txn.set_receipt(item.claim, receipt.to_document())
    parts.publisher.write_receipt(item, receipt.to_document())
    parts.archive.keep([(item, True)])
    return receipt.outcome
