"""Deciding a chunk of requests: read and check each, then decide it, in order.

Each input of a chunk becomes one of a few frozen values, so an impossible combination
(a decision without a record, a repeat with a receipt of its own) cannot be built:
``Unusable`` or ``Read`` once read here, then ``Unusable`` or ``Checked`` after its own
checks (``policy.inspect_request``, run by the signer's workers: ``check_chunk``), then
``Refused``, ``Repeated`` or ``Accepted`` once ``issuance.decide_request`` has heard the
store's facts. ``decide_chunk`` records the whole chunk in the caller's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..authority import leaf_serial
from ..clock import format_utc, parse_utc
from ..codes import refusal_as
from ..errors import InputRejected, RequestRejected
from ..faults import machine_fault
from ..intake import Claim, InputFile, read_input
from ..issuance import Accept, KeyFacts, Refuse, Repeat, decide_request
from ..policy import InspectedRequest, inspect_request
from ..publication import FIRST_ISSUER
from ..receipts import Receipt, Tipo, refusal_receipt
from ..records import RequestRecord
from ..signing import CheckJob, CheckResult, PendingChecks, SignJob
from ..states import Stato
from ..store import NewRequest, Transaction
from .parts import Parts

__all__ = [
    "Accepted",
    "Checked",
    "Checking",
    "Decided",
    "Read",
    "Refused",
    "Repeated",
    "Unusable",
    "check_chunk",
    "decide_chunk",
    "sign_job",
]

log = logging.getLogger("certdesk")


@dataclass(frozen=True)
class Unusable:
    """Not a request that can be decided: unreadable, or refused by its own checks."""

    item: Claim
    sha256: str
    error: InputRejected


@dataclass(frozen=True)
class Read:
    item: Claim
    data: InputFile


@dataclass(frozen=True)
class Checked:
    item: Claim
    data: InputFile
    inspected: InspectedRequest


@dataclass(frozen=True)
class Refused:
    item: Claim
    record: RequestRecord  # RIFIUTATO, with its IdOperazione
    receipt: Receipt


@dataclass(frozen=True)
class Repeated:
    item: Claim
    of: RequestRecord  # its receipt is made once ``of`` is settled (maybe in this chunk)


@dataclass(frozen=True)
class Accepted:
    item: Claim
    record: RequestRecord  # IN_GENERAZIONE, serial and validity reserved
    job: SignJob


Decided = Refused | Repeated | Accepted


# -- reading and checking ------------------------------------------------------------------
@dataclass(frozen=True)
class Checking:
    """A chunk read in this process, its requests out in the workers for their checks
    (``pending``), or to be checked here (None)."""

    inputs: list[Unusable | Read]
    pending: PendingChecks | None

    def result(self, parts: Parts) -> list[Unusable | Checked]:
        """The chunk checked, in order. If the workers could not check it (one died twice,
        a bug), it is checked here, where a bug is refused for its one request."""
        readable = [r for r in self.inputs if isinstance(r, Read)]
        if self.pending is None:
            return [r if isinstance(r, Unusable) else _check_here(parts, r) for r in self.inputs]
        try:
            results = iter(self.pending.result())
        except Exception:
            log.warning("checking %d requests in the workers failed: checking them here",
                        len(readable), exc_info=True)  # fmt: skip
            return [r if isinstance(r, Unusable) else _check_here(parts, r) for r in self.inputs]
        return [r if isinstance(r, Unusable) else _checked(r, next(results)) for r in self.inputs]


def check_chunk(parts: Parts, items: list[Claim]) -> Checking:
    """Read the chunk's files here, and send the readable ones to be checked: to the
    workers when there are several; with one, it is the busier of the two processes (a
    signature costs several times a request's checks and this process' own work), so
    this process checks them while it waits for the signatures."""
    inputs = [_read(parts, item) for item in items]
    if parts.signer.workers < 2:
        return Checking(inputs, None)
    allow_ec = parts.config.certificates.allow_ec
    jobs = [CheckJob(r.data.data, allow_ec) for r in inputs if isinstance(r, Read)]
    return Checking(inputs, parts.signer.submit_checks(jobs))


def _read(parts: Parts, item: Claim) -> Unusable | Read:
    data = read_input(parts.home, item)
    if isinstance(data, InputRejected):
        return Unusable(item, "", data)
    return Read(item, data)


def _checked(read: Read, result: CheckResult) -> Unusable | Checked:
    if isinstance(result, RequestRejected):
        return Unusable(read.item, read.data.sha256, result)
    return Checked(read.item, read.data, result)


def _check_here(parts: Parts, read: Read) -> Unusable | Checked:
    try:
        inspected = inspect_request(read.data.data, allow_ec=parts.config.certificates.allow_ec)
    except RequestRejected as exc:
        return Unusable(read.item, read.data.sha256, exc)
    except Exception as exc:  # a parser bug must not stop the batch
        if machine_fault(exc):
            raise  # out of memory is not the request's fault: a pause
        log.exception("unexpected error inspecting %r", read.item.name)
        error = refusal_as(RequestRejected, "ERRORE_INTERNO", errore=type(exc).__name__)
        return Unusable(read.item, read.data.sha256, error)
    return Checked(read.item, read.data, inspected)


# -- deciding --------------------------------------------------------------------------------
def sign_job(record: RequestRecord, spki_der: bytes) -> SignJob:
    """The signature a request IN_GENERAZIONE was reserved: its serial, and a validity from
    its DataRichiesta, so the certificate ends exactly at the reserved DataScadenza (also
    when a restart signs it later)."""
    return SignJob(
        record.codice_fiscale, spki_der, record.data_richiesta, int(record.seriale, 16),
        record.emittente or FIRST_ISSUER,
    )  # fmt: skip


class _Chunk:
    """One chunk's decisions, made in order inside its transaction: each input sees the
    committed store and the inputs before it in the chunk."""

    def __init__(self, parts: Parts, txn: Transaction) -> None:
        self.parts = parts
        self.txn = txn
        now = parts.clock()
        self.now = now
        self.stamp = parse_utc(format_utc(now))  # what the store gives back: whole seconds
        # The issuer is chosen with the serial and recorded with it: a restart signs a
        # request left IN_GENERAZIONE with the same issuer, even after a rollover.
        self.issuer = parts.issuer_for(self.stamp)
        self.keys: dict[str, str] = {}  # key hash -> codice fiscale, accepted in the chunk
        # "<canale>/<input hash>" -> accepted in the chunk (a retry is one of its channel)
        self.inputs: dict[str, RequestRecord] = {}
        self.rows: list[NewRequest] = []
        self.retired = parts.store.retired_channels()  # inputs through them are refused

    def decide(self, checked: Unusable | Checked) -> Decided:
        canale = checked.item.canale
        if canale in self.retired:
            sha = checked.sha256 if isinstance(checked, Unusable) else checked.data.sha256
            error = refusal_as(
                InputRejected, "CANALE_RITIRATO", canale=canale, ritirato=self.retired[canale]
            )
            return self._refuse(checked.item, sha, error, None)
        if isinstance(checked, Unusable):
            return self._refuse(checked.item, checked.sha256, checked.error, None)
        store, inspected, sha = self.parts.store, checked.inspected, checked.data.sha256
        spki = inspected.spki_sha256
        earlier = store.live_request_with_input(sha, spki)
        if earlier is not None and earlier.canale != canale:
            earlier = None  # a retry is answered in its own channel: another's is not shown
        decision = decide_request(
            inspected.codice_fiscale.value,
            same_input=earlier or self.inputs.get(f"{canale}/{sha}"),
            key=KeyFacts(store.key_uses(spki), self.keys.get(spki)),
            canale=canale,
        )
        if isinstance(decision, Repeat):
            return Repeated(checked.item, decision.of)
        if isinstance(decision, Refuse):
            return self._refuse(checked.item, sha, decision.error, inspected)
        assert isinstance(decision, Accept)
        return self._accept(checked)

    def _refuse(
        self, item: Claim, sha: str, error: InputRejected, inspected: InspectedRequest | None
    ) -> Refused:
        record = RequestRecord(
            id_operazione=self.txn.allocate_id(self.now),
            codice_fiscale=inspected.codice_fiscale.value if inspected else "",
            profilo=inspected.codice_fiscale.soggetto.value if inspected else "",
            stato=Stato.RIFIUTATO,
            data_richiesta=self.stamp,
            esito=error.code,
            file_origine=item.name,
            canale=item.canale,
        )
        self._row(record, item, sha, None)
        receipt = refusal_receipt(item.name, Tipo.RICHIESTA, error, record)
        return Refused(item, record, receipt)

    def _accept(self, checked: Checked) -> Accepted:
        inspected = checked.inspected
        # The serial and validity are reserved with the decision, before the signature:
        # no certificate can exist that the store does not name.
        record = RequestRecord(
            id_operazione=self.txn.allocate_id(self.now),
            codice_fiscale=inspected.codice_fiscale.value,
            profilo=inspected.codice_fiscale.soggetto.value,
            stato=Stato.IN_GENERAZIONE,
            data_richiesta=self.stamp,
            esito="",
            file_origine=checked.item.name,
            spki_sha256=inspected.spki_sha256,
            seriale=format(leaf_serial(), "x"),
            data_scadenza=self.issuer.leaf_not_after(self.stamp),
            emittente=self.issuer.name,
            canale=checked.item.canale,
        )
        self._row(record, checked.item, checked.data.sha256, inspected.csr_der)
        self.keys[inspected.spki_sha256] = record.codice_fiscale
        self.inputs[f"{record.canale}/{checked.data.sha256}"] = record
        return Accepted(checked.item, record, sign_job(record, inspected.spki_der))

    def _row(self, record: RequestRecord, item: Claim, sha: str, csr_der: bytes | None) -> None:
        self.rows.append(
            NewRequest(
                id_operazione=record.id_operazione,
                stato=record.stato,
                codice_fiscale=record.codice_fiscale,
                profilo=record.profilo,
                esito=record.esito,
                file_origine=record.file_origine,
                claim=item.claim,
                input_sha256=sha,
                spki_sha256=record.spki_sha256,
                csr_der=csr_der,
                seriale=record.seriale,
                data_scadenza=record.data_scadenza,
                emittente=record.emittente,
                canale=record.canale,
            )
        )


def decide_chunk(
    parts: Parts, txn: Transaction, checked: list[Unusable | Checked]
) -> list[Decided]:
    """In ``txn``: record every input of a checked chunk with its decision; decided first,
    then written with one statement per table."""
    chunk = _Chunk(parts, txn)
    decided = [chunk.decide(c) for c in checked]
    inputs = [
        (c.item.claim, c.item.name, Tipo.RICHIESTA.value, _sha(c)) for c in checked
    ]
    txn.record_inputs(chunk.now, inputs)
    txn.record_requests(chunk.now, chunk.rows)
    txn.set_receipts(
        [(d.item.claim, d.receipt.to_document()) for d in decided if isinstance(d, Refused)]
    )
    return decided


def _sha(checked: Unusable | Checked) -> str:
    return checked.sha256 if isinstance(checked, Unusable) else checked.data.sha256
