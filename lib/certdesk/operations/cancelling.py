"""Cancelling: a run of annullamenti (and of files of no known kind), decided together.

The crash-safe order of a run:

1. its inputs were claimed (renamed into ``state/work/``);
2. each is read and parsed (``cancellation.load_cancellation_document``,
   ``parse_cancellation``; a ``.p7m`` is opened first, ``operations.signed``); one
   transaction records every input and, in order, applies each annullamento the rule
   accepts (``cancellation.decide_cancellation``) over the certificates its sender may
   cancel (``channels.Authority``: its channel's, every one for the administrators', the
   signer's own for a ``.p7m``), so each sees the ones before it (a person's first
   cancellation stays the cumulative one), and sets every receipt;
3. if anything was cancelled: one CRL, one batch of OCSP responses, one ledger update and
   the journal for the whole run (at a million rows each costs a second);
4. the receipts appear, then the originals are appended to the day's packs in
   ``state/archive/`` or ``state/quarantine/`` and made durable, then recorded with
   "done" (``Archive.keep``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..cancellation import (
    decide_cancellation,
    is_first_cancellation,
    load_cancellation_document,
    parse_cancellation,
)
from ..channels import Authority
from ..cms_proof import SignedMessage, looks_like_cms
from ..codes import refusal_as
from ..errors import InputRejected
from ..intake import Claim, read_input
from ..receipts import Outcome, Receipt, Tipo, cancellation_receipt, refusal_receipt
from ..states import Stato
from ..store import Transaction
from .parts import Parts
from .signed import holder_authority, open_signed_cancellation

__all__ = ["cancel_run", "finish"]


@dataclass(frozen=True)
class _Read:
    """One input of the run: its document when it is an annullamento, else why not."""

    item: Claim
    tipo: Tipo
    sha256: str
    document: dict[str, object] | None
    error: InputRejected | None
    signed: SignedMessage | None = None  # a .p7m: the signature its authority rests on


def cancel_run(parts: Parts, items: Sequence[Claim]) -> list[Outcome]:
    now = parts.clock()
    read = [_read(parts, item) for item in items]
    retired = parts.store.retired_channels()
    cancelled: list[str] = []
    answered: list[tuple[Claim, Receipt]] = []
    with parts.store.transaction() as txn:
        for entry in read:
            txn.record_input(
                claim=entry.item.claim, file=entry.item.name, tipo=entry.tipo.value,
                sha256=entry.sha256, now=now,
            )  # fmt: skip
            receipt = _answer(parts, txn, entry, now, retired)
            cancelled.extend(receipt.cancelled)
            txn.set_receipt(entry.item.claim, receipt.to_document())
            answered.append((entry.item, receipt))
    if cancelled:
        parts.revocation.publish_crl_if_due(force=True, now=now)
        parts.revocation.publish_ocsp(cancelled, now=now)
        parts.refresh_ledger(cancelled, release_old=False)
        parts.publisher.catch_up_journal(parts.store)
    outcomes = finish(parts, answered)
    parts.publisher.release_old_ledger()  # after the receipts (LedgerFile._replace)
    return outcomes


def finish(parts: Parts, answered: Sequence[tuple[Claim, Receipt]]) -> list[Outcome]:
    """Receipts (after what they report is durable), then the archive with "done"."""
    canali = {item.canale for item, _ in answered}  # only the outboxes these receipts go to
    parts.publisher.sync_folders(canali)
    for item, receipt in answered:
        parts.publisher.write_receipt(item, receipt.to_document(), sync=False)
    parts.publisher.sync_folders(canali)
    parts.archive.keep([(item, receipt.quarantined) for item, receipt in answered])
    return [receipt.outcome for _, receipt in answered]


def _answer(
    parts: Parts, txn: Transaction, entry: _Read, now: datetime, retired: dict[str, str]
) -> Receipt:
    """In ``txn``: apply one annullamento, or refuse the input."""
    canale = entry.item.canale
    if canale in retired:
        ritirato = retired[canale]
        error = refusal_as(InputRejected, "CANALE_RITIRATO", canale=canale, ritirato=ritirato)
        return refusal_receipt(entry.item.name, entry.tipo, error)
    if entry.document is None:
        assert entry.error is not None
        return refusal_receipt(entry.item.name, entry.tipo, entry.error)
    try:
        ids = _cancel(parts, txn, entry, now)
    except InputRejected as exc:
        return refusal_receipt(entry.item.name, entry.tipo, exc)
    records = [parts.store.get(i) for i in ids]  # as this transaction sees them
    return cancellation_receipt(entry.item.name, [r for r in records if r is not None])


def _read(parts: Parts, item: Claim) -> _Read:
    """Read a non-request input and tell whether it is an annullamento document."""
    tipo = Tipo.of(item.name)
    data = read_input(parts.home, item)
    if isinstance(data, InputRejected):
        return _Read(item, tipo, "", None, data)
    signed = None
    try:
        # A private key is refused (and kept in quarantine) whatever its name says.
        if tipo is Tipo.SCONOSCIUTO or b"PRIVATE KEY-----" in data.data:
            raise _unknown(data.data)
        if item.name.lower().endswith(".p7m") or looks_like_cms(data.data):
            document, signed = open_signed_cancellation(data.data)
        else:
            document = load_cancellation_document(data.data)
        if document.get("tipo") != "annullamento":
            tipo = Tipo.SCONOSCIUTO
            raise refusal_as(InputRejected, "INPUT_TIPO_SCONOSCIUTO", "json")
    except InputRejected as exc:
        return _Read(item, tipo, data.sha256, None, exc)
    return _Read(item, tipo, data.sha256, document, None, signed)


def _cancel(parts: Parts, txn: Transaction, entry: _Read, now: datetime) -> list[str]:
    """In ``txn``: apply one annullamento; the IdOperazione it cancelled.

    The rules see only what the sender may cancel: another channel's certificates of the
    same person are neither cancelled nor disclosed, and "first" means the first within
    the sender's authority (which, for the administrators, is the person's first)."""
    store = parts.store
    assert entry.document is not None
    request = parse_cancellation(entry.document)
    canale = entry.item.canale
    if entry.signed is not None:
        authority = holder_authority(store, entry.signed, request, canale)
    else:
        authority = Authority.of_channel(canale)
    named = {}
    for id_op in request.id_operazione:
        record = store.get(id_op)
        named[id_op] = record if record is not None and authority.may_cancel(record) else None
    # a person has a handful of requests
    mine = authority.visible(store.find(codice_fiscale=request.codice_fiscale))
    active = [r for r in mine if r.stato is Stato.ATTIVATO]
    first = entry.signed is None and is_first_cancellation(r.stato for r in mine)
    targets = decide_cancellation(request, named, active, first=first)
    for record in targets:
        txn.cancel(
            record.id_operazione,
            now=now,
            motivazione=request.motivazione.value,
            nota=request.nota,
            operatore=request.operatore,
        )
    return [record.id_operazione for record in targets]


def _unknown(data: bytes) -> InputRejected:
    if b"PRIVATE KEY-----" in data:
        return refusal_as(InputRejected, "CHIAVE_PRIVATA_RICEVUTA")
    return refusal_as(InputRejected, "INPUT_TIPO_SCONOSCIUTO")
