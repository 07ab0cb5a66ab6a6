"""Operations: turn claimed input files into state changes, outbox files and receipts.

The order inside every operation is what makes a ``kill -9`` harmless:

1. the input is claimed (renamed into ``state/work/``) — it can no longer be taken twice;
2. the decision is committed to the store together with the input's record
   (``IN_GENERAZIONE`` with the serial and validity reserved for the certificate,
   ``RIFIUTATO``, or the cancellation);
3. the certificate is signed and ``ATTIVATO`` is committed with it and the receipt;
4. certificates, ledger, journal (and CRL) are written, then the receipt, last;
5. the original is moved to ``state/archive/`` or ``state/quarantine/``.

``recover()`` at start re-runs whatever a crash interrupted, from the store alone.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .authority import CertificateAuthority, IssuedCertificate, leaf_serial
from .cancellation import decide_cancellation, load_cancellation_document, parse_cancellation
from .clock import format_utc, now_utc, parse_utc
from .config import Config
from .errors import CertdeskError, InputRejected, RequestRejected
from .faults import machine_fault
from .home import Home
from .intake import Claim, InputFile, list_claims, read_claimed, settle_claim
from .policy import InspectedRequest, inspect_request
from .publish import Publisher
from .reasons import Motivazione
from .receipts import cancellation_receipt, refusal_receipt, request_receipt
from .records import RequestRecord
from .revocation_publisher import RevocationPublisher
from .signing import PendingSignatures, Signer, SignJob
from .states import Stato
from .store import Activation, InputRecord, NewRequest, Store, Transaction

__all__ = ["Engine", "Outcome"]

log = logging.getLogger("certdesk")


@dataclass(frozen=True)
class Outcome:
    """What happened to one input: for the log line and the daemon's counters."""

    file: str
    tipo: str
    esito: str
    id_operazione: str = ""
    codice: str = ""


@dataclass
class _Pending:
    item: Claim
    tipo: str
    data: InputFile | None = None
    error: CertdeskError | None = None
    inspected: InspectedRequest | None = None
    id_operazione: str = ""
    repeated_of: RequestRecord | None = None
    receipt: dict[str, Any] | None = None

    @property
    def quarantined(self) -> bool:
        """A refused input's original goes to state/quarantine/, as the contract says."""
        return self.receipt is not None and self.receipt.get("esito") != "OK"

    extra: dict[str, Any] = field(default_factory=dict)
    record: RequestRecord | None = None  # an accepted request, as committed


@dataclass
class _Flight:
    """A chunk of requests whose decisions are committed and whose signatures are coming."""

    batch: list[_Pending]
    accepted: list[_Pending]
    refused: list[RequestRecord]
    jobs: list[SignJob]
    signatures: PendingSignatures | None = None
    settled: list[RequestRecord] = field(default_factory=list)


# Chunks in flight: one being signed while the next waits its turn in the pool, so a
# worker never idles while this process publishes (make bench).
_PIPELINE_DEPTH = 2
# CRL entries built ahead per idle slice: ~20 ms of work.
_CRL_ENTRIES_SLICE = 2000


def _tipo_for(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".csr"):
        return "richiesta"
    if lower.endswith(".json"):
        return "annullamento"
    return "sconosciuto"


class _Feed:
    """Claims as the engine asks for them: runs of requests in chunks, anything else alone.

    The daemon's claims are lazy (each ``rename`` out of ``inbox/`` happens when the
    pipeline wants the next chunk), so a backlog of any size flows through one pipeline
    without draining it, and a stop request simply ends the feed."""

    def __init__(self, items: Iterable[Claim]) -> None:
        self._items = iter(items)
        self._next: Claim | None = None
        self._ended = False

    def peek(self) -> Claim | None:
        if self._next is None and not self._ended:
            self._next = next(self._items, None)
            self._ended = self._next is None
        return self._next

    def pop(self) -> Claim:
        item = self.peek()
        assert item is not None
        self._next = None
        return item

    def requests(self, limit: int) -> list[Claim]:
        """Up to ``limit`` request claims, stopping before anything else."""
        return self._run(limit, requests=True)

    def others(self, limit: int) -> list[Claim]:
        """Up to ``limit`` claims of anything but requests, stopping before a request."""
        return self._run(limit, requests=False)

    def _run(self, limit: int, *, requests: bool) -> list[Claim]:
        taken: list[Claim] = []
        while len(taken) < limit and (item := self.peek()) is not None:
            if (_tipo_for(item.name) == "richiesta") != requests:
                break
            taken.append(self.pop())
        return taken


def _sign_job(record: RequestRecord, spki_der: bytes) -> SignJob:
    """The signature a request IN_GENERAZIONE was reserved: its serial, and a validity from
    its DataRichiesta, so the certificate ends exactly at the reserved DataScadenza (also
    when a restart signs it later)."""
    return SignJob(
        record.codice_fiscale, spki_der, record.data_richiesta, int(record.seriale, 16)
    )


def _profilo(inspected: InspectedRequest) -> str:
    return inspected.codice_fiscale.soggetto.value


class Engine:
    """The one engine behind the daemon and the CLI: owns the store and the signer."""

    def __init__(
        self,
        home: Home,
        config: Config,
        ca: CertificateAuthority,
        store: Store,
        signer: Signer,
        *,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.home = home
        self.config = config
        self.ca = ca
        self.store = store
        self.signer = signer
        self.publisher = Publisher(home)
        # OCSP responses are signed by the same processes as certificates (both cores).
        self.revocation = RevocationPublisher(
            home, config, ca, store, sign_ocsp=lambda jobs: self.signer.sign_ocsp(jobs)
        )
        self._clock = clock

    # -- start-up --------------------------------------------------------------------
    def recover(self) -> list[Outcome]:
        """Finish everything a crash interrupted; make the outbox match the store."""
        self.publisher.ensure_layout()
        self.publisher.remove_stale_asides()
        self.publisher.write_ca(self.ca.root_pem(), self.ca.issuing_pem())
        self.publisher.catch_up_journal(self.store)
        outcomes = self.finish_interrupted(at_start=True)
        # Claims never recorded (killed right after the rename): process them now.
        leftovers = [c for c in list_claims(self.home) if self.store.input(c.claim) is None]
        if leftovers:
            outcomes.extend(self.process(leftovers))
        stray = [c for c in list_claims(self.home) if self.store.input(c.claim) is not None]
        for item in stray:  # recorded and done, but the move was interrupted
            settled = self.store.input(item.claim)
            assert settled is not None
            settle_claim(self.home, item, quarantined=settled.quarantined)
        return outcomes

    def finish_interrupted(self, *, at_start: bool = False) -> list[Outcome]:
        """Finish the inputs whose outcome is committed but not yet published (a crash, or
        a batch that failed half-way), in the order of a normal batch: certificates,
        ledger, journal and CRL first, receipts last, then the move out of state/work/.
        ``at_start``: nothing was published since the crash (see the ledger below)."""
        # Requests accepted but not signed (killed between the two commits).
        pending = self.store.pending_generation()
        if pending:
            self._sign_and_activate(pending)
        # Inputs recorded but not finished (receipt or archive missing).
        unfinished: list[InputRecord] = []
        rows = [record.id_operazione for record in pending]  # maybe not in ledger.csv
        cancellation = False
        cancelled_ids: list[str] = []
        for record in self.store.pending_inputs():
            if record.receipt is None:
                # A repeat whose receipt was not committed yet: deciding it again is
                # idempotent, so forget the record; its claim is processed afresh.
                with self.store.transaction() as txn:
                    txn.forget_input(record.claim)
                continue
            unfinished.append(record)
            if record.tipo == "annullamento" and record.receipt.get("esito") == "OK":
                cancellation = True
                cancelled_ids.extend(record.receipt.get("id_operazione") or [])
            # ATTIVATO was committed with the receipt, the certificate file maybe not.
            request = self.store.request_for_claim(record.claim)
            if request is not None:
                rows.append(request.id_operazione)
            der = self.store.certificate_der(request.id_operazione) if request else None
            if request is not None and der is not None:
                pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
                self.publisher.write_certificate(request.id_operazione, pem, sync=False)
        # A full rebuild costs seconds at a million rows: only when a row may be stale (a
        # crash mid-update) or there is no ledger. Rows missing after a crash can only be
        # the last ones (batches append in IdOperazione order, and a crash ends the
        # appends): they are appended. After a batch that failed while the daemon went on,
        # later batches may have appended past its rows: they are put in their place.
        if not self.store.ledger_is_current() or not self.publisher.ledger.exists():
            self._refresh_ledger()
        elif rows and not (at_start and self.publisher.catch_up_ledger(self.store)):
            self._refresh_ledger(rows)
        self.publisher.catch_up_journal(self.store)
        self.revocation.publish_crl_if_due(
            force=cancellation or not self.revocation.crl_exists(), now=self._clock()
        )
        self.revocation.publish_ocsp(cancelled_ids, now=self._clock())
        outcomes: list[Outcome] = []
        if not unfinished:
            return outcomes
        self.publisher.sync_folders()
        for record in unfinished:
            assert record.receipt is not None
            self.publisher.write_receipt(record.file, record.receipt, sync=False)
            outcomes.append(self._outcome(record.file, record.receipt))
        self.publisher.sync_folders()
        for record in unfinished:
            item = Claim(record.claim, record.file)
            settle_claim(self.home, item, quarantined=record.quarantined)
        with self.store.transaction() as txn:
            txn.mark_done([record.claim for record in unfinished])
        return outcomes

    def outcome_of(self, item: Claim) -> Outcome | None:
        """The outcome of a claim from its recorded receipt, once it has one."""
        record = self.store.input(item.claim)
        if record is None or record.receipt is None:
            return None
        return self._outcome(record.file, record.receipt)

    def refuse_internal(self, item: Claim, error: Exception) -> Outcome:
        """Refuse a claim that processing failed on, even alone: receipt ERRORE_INTERNO,
        input quarantined. Call ``finish_interrupted()`` first: a claim whose outcome was
        committed after all keeps that outcome."""
        now = self._clock()
        tipo = _tipo_for(item.name)
        # A fault of the machine never gets here (the daemon pauses instead): this is a bug,
        # which the same file dropped again would meet again.
        refusal = InputRejected(
            f"certdesk could not process this file because of an internal error "
            f"({type(error).__name__}); it was kept in quarantine and the administrator has "
            "the details in the daemon's log: ask the administrator before sending it again",
            code="ERRORE_INTERNO",
        )
        existing = self.store.input(item.claim)
        if existing is not None and existing.receipt is not None:
            if not existing.done:
                self.finish_interrupted()
            return self._outcome(existing.file, existing.receipt)
        receipt = refusal_receipt(item.name, tipo, refusal)
        with self.store.transaction() as txn:
            txn.forget_input(item.claim)
            txn.record_input(claim=item.claim, file=item.name, tipo=tipo, sha256="", now=now)
            txn.set_receipt(item.claim, receipt)
        self.publisher.write_receipt(item.name, receipt)
        settle_claim(self.home, item, quarantined=True)
        with self.store.transaction() as txn:
            txn.mark_done([item.claim])
        return self._outcome(item.name, receipt)

    # -- the batch -------------------------------------------------------------------
    def process(
        self,
        items: Iterable[Claim],
        *,
        report: Callable[[list[Outcome]], None] | None = None,
    ) -> list[Outcome]:
        """Process claimed inputs in order: runs of CSRs pipelined in chunks, others one by
        one. ``items`` may be lazy; ``report`` hears each chunk's outcomes once published."""
        outcomes: list[Outcome] = []

        def published(done: list[Outcome]) -> None:
            outcomes.extend(done)
            if report is not None and done:
                report(done)

        feed = _Feed(items)
        while (item := feed.peek()) is not None:
            if _tipo_for(item.name) == "richiesta":
                self._process_requests(feed, published)
            else:
                published(self._process_others(feed.others(self._request_chunk())))
        return outcomes

    def _read(self, pending: _Pending) -> None:
        try:
            pending.data = read_claimed(self.home, pending.item)
        except InputRejected as exc:
            pending.error = exc
        except OSError as exc:
            if machine_fault(exc):
                raise  # an I/O error of the disk says nothing of the file: a pause
            pending.error = InputRejected(
                f"the file could not be read ({exc.strerror})", code="INPUT_NON_LEGGIBILE"
            )

    def _request_chunk(self) -> int:
        """Requests per transaction and signing round trip (``[daemon] batch_size``):
        enough to amortise the commit and the durability barrier, small enough that the
        workers never wait long for the next."""
        return max(1, self.config.daemon.batch_size)

    def _process_requests(
        self, feed: _Feed, published: Callable[[list[Outcome]], None]
    ) -> None:
        """The feed's run of requests in chunks, pipelined, with one transaction per chunk.

        While the workers sign chunks k and k+1, this process claims, reads and checks
        chunk k+2; then one transaction commits ATTIVATO for chunk k, the decisions of
        chunk k+2 and "done" for chunk k-1; chunk k+2 goes to the workers, and chunk k is
        published and archived. Each chunk still follows the crash-safe order of the module
        docstring: its decisions commit before it is signed, ATTIVATO before its files,
        the files before its receipts, the receipts before the archive, the archive before
        "done".
        """
        size = self._request_chunk()
        # A small first chunk gets the workers going sooner.
        chunk = feed.requests(max(1, size // 4))
        in_flight: deque[_Flight] = deque()
        archived: list[str] = []  # claims archived, marked done with the next commit
        while chunk or in_flight:
            completing = None
            certificates: list[tuple[str, bytes]] = []
            if in_flight and (len(in_flight) >= _PIPELINE_DEPTH or not chunk):
                completing = in_flight.popleft()
            batch = self._inspect_chunk(chunk) if chunk else None
            issued = (
                self._signatures(completing.signatures, len(completing.jobs))
                if completing is not None
                else []
            )
            with self.store.transaction() as txn:
                if completing is not None:
                    certificates = self._activate_flight(txn, completing, issued)
                flight = self._decide(txn, batch) if batch is not None else None
                if archived:
                    txn.mark_done(archived)
            archived = []
            if flight is not None:
                flight.signatures = self.signer.submit(flight.jobs)
                in_flight.append(flight)
            if completing is not None:
                published(self._publish_flight(completing, certificates))
                archived = [p.item.claim for p in completing.batch]
            # Once the run has ended (a stop, the end, or another kind of input), only
            # drain: the feed is not read again.
            chunk = feed.requests(size) if chunk else []
        if archived:
            with self.store.transaction() as txn:
                txn.mark_done(archived)

    def _inspect(self, pending: _Pending) -> None:
        self._read(pending)
        if pending.error is not None or pending.data is None:
            return
        try:
            pending.inspected = inspect_request(
                pending.data.data, allow_ec=self.config.certificates.allow_ec
            )
        except RequestRejected as exc:
            pending.error = exc
        except Exception as exc:  # a parser bug must not stop the batch
            if machine_fault(exc):
                raise  # out of memory is not the request's fault: a pause
            log.exception("unexpected error inspecting %r", pending.item.name)
            pending.error = RequestRejected(
                f"the request could not be processed ({type(exc).__name__})",
                code="ERRORE_INTERNO",
            )

    def _inspect_chunk(self, items: Sequence[Claim]) -> list[_Pending]:
        batch = [_Pending(item, "richiesta") for item in items]
        for pending in batch:
            self._inspect(pending)
        return batch

    def _decide(self, txn: Transaction, batch: list[_Pending]) -> _Flight:
        """In ``txn``: record every input of a checked chunk with its decision
        (IN_GENERAZIONE, or RIFIUTATO with its receipt); the signing jobs to submit once
        ``txn`` commits. Decided first, then written with one statement per table."""
        now = self._clock()
        stamp = parse_utc(format_utc(now))  # what the store gives back: whole seconds
        refused: list[RequestRecord] = []
        accepted: list[_Pending] = []
        batch_keys: dict[str, str] = {}
        batch_inputs: dict[str, RequestRecord] = {}
        inputs: list[tuple[str, str, str, str]] = []
        new_rows: list[NewRequest] = []
        receipts: list[tuple[str, dict[str, Any]]] = []
        for pending in batch:
            sha = pending.data.sha256 if pending.data else ""
            inputs.append((pending.item.claim, pending.item.name, "richiesta", sha))
            inspected = pending.inspected
            if pending.error is None and inspected is not None:
                repeated = self.store.live_request_with_input(
                    sha, inspected.spki_sha256
                ) or batch_inputs.get(sha)
                if repeated is not None:
                    pending.repeated_of = repeated
                    continue
                try:
                    self._check_key_use(inspected, batch_keys)
                except RequestRejected as exc:
                    pending.error = exc
            accept = pending.error is None and inspected is not None
            pending.id_operazione = txn.allocate_id(now)
            stato = Stato.IN_GENERAZIONE if accept else Stato.RIFIUTATO
            esito = "" if pending.error is None else pending.error.code
            record = RequestRecord(
                id_operazione=pending.id_operazione,
                codice_fiscale=inspected.codice_fiscale.value if inspected else "",
                profilo=_profilo(inspected) if inspected else "",
                stato=stato,
                data_richiesta=stamp,
                esito=esito,
                file_origine=pending.item.name,
                spki_sha256=inspected.spki_sha256 if accept and inspected else "",
                # The serial and validity are reserved with the decision, before the
                # signature: no certificate can exist that the store does not name.
                seriale=format(leaf_serial(), "x") if accept else "",
                data_scadenza=self.ca.leaf_not_after(stamp) if accept else None,
            )
            new_rows.append(
                NewRequest(
                    id_operazione=record.id_operazione,
                    stato=stato,
                    codice_fiscale=record.codice_fiscale,
                    profilo=record.profilo,
                    esito=esito,
                    file_origine=record.file_origine,
                    claim=pending.item.claim,
                    input_sha256=sha,
                    spki_sha256=record.spki_sha256,
                    csr_der=inspected.csr_der if accept and inspected else None,
                    seriale=record.seriale,
                    data_scadenza=record.data_scadenza,
                )
            )
            if accept:
                assert inspected is not None
                pending.record = record
                accepted.append(pending)
                batch_keys[inspected.spki_sha256] = record.codice_fiscale
                batch_inputs[sha] = record
            else:
                assert pending.error is not None
                refused.append(record)  # a settled row for the ledger
                pending.receipt = refusal_receipt(
                    pending.item.name, "richiesta", pending.error, record
                )
                receipts.append((pending.item.claim, pending.receipt))
        txn.record_inputs(now, inputs)
        txn.record_requests(now, new_rows)
        txn.set_receipts(receipts)
        jobs = []
        for pending in accepted:
            assert pending.inspected is not None and pending.record is not None
            jobs.append(_sign_job(pending.record, pending.inspected.spki_der))
        return _Flight(batch, accepted, refused, jobs)

    def _activate_flight(
        self,
        txn: Transaction,
        flight: _Flight,
        issued: Sequence[IssuedCertificate | None],
    ) -> list[tuple[str, bytes]]:
        """In ``txn``: ATTIVATO and the receipts of a signed chunk; its certificates."""
        entries = []
        for pending in flight.accepted:
            assert pending.record is not None
            entries.append((pending.record, pending.item.claim))
        settled, certificates, receipts = self._activate(txn, entries, issued)
        for pending, receipt in zip(flight.accepted, receipts, strict=True):
            pending.receipt = receipt
        flight.settled = sorted(flight.refused + settled, key=lambda r: r.id_operazione)
        # Repeats point at a request that may have been settled in this very chunk.
        for pending in flight.batch:
            if pending.repeated_of is not None:
                current = self._get(pending.repeated_of.id_operazione)
                pending.receipt = request_receipt(pending.item.name, current, repeated=True)
                txn.set_receipt(pending.item.claim, pending.receipt)
        return certificates

    def _publish_flight(
        self, flight: _Flight, certificates: Sequence[tuple[str, bytes]]
    ) -> list[Outcome]:
        """Certificates, ledger and journal durable, then the receipts, then the archive."""
        outcomes = []
        notes: list[tuple[str, dict[str, Any]]] = []
        for pending in flight.batch:
            assert pending.receipt is not None
            notes.append((pending.item.name, pending.receipt))
            outcomes.append(self._outcome(pending.item.name, pending.receipt))
        self.publisher.publish_batch(
            self.store, certificates=certificates, ledger=flight.settled, receipts=notes
        )
        for pending in flight.batch:
            settle_claim(self.home, pending.item, quarantined=pending.quarantined)
        return outcomes

    @staticmethod
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
        self,
        txn: Transaction,
        entries: Sequence[tuple[RequestRecord, str]],
        issued: Sequence[IssuedCertificate | None],
    ) -> tuple[list[RequestRecord], list[tuple[str, bytes]], list[dict[str, Any]]]:
        """In ``txn``: ATTIVATO (or RIFIUTATO when signing failed) and the receipt of each
        (request, claim); returns the settled records, the certificates and the receipts."""
        now = self._clock()
        settled: list[RequestRecord] = []
        certificates: list[tuple[str, bytes]] = []
        receipts: list[dict[str, Any]] = []
        activations: list[Activation] = []
        for (record, _claim), cert in zip(entries, issued, strict=True):
            if cert is None:
                txn.fail(record.id_operazione, now=now, esito="FIRMA_NON_RIUSCITA")
                # As ``fail`` leaves the store: the reserved serial is released.
                updated = replace(
                    record,
                    stato=Stato.RIFIUTATO,
                    esito="FIRMA_NON_RIUSCITA",
                    seriale="",
                    data_scadenza=None,
                )
                error = RequestRejected(
                    "the CA could not sign the certificate; the administrator was "
                    "notified; drop the request again later",
                    code="FIRMA_NON_RIUSCITA",
                )
                receipt = refusal_receipt(record.file_origine, "richiesta", error, updated)
            else:
                activations.append(
                    Activation(
                        id_op=record.id_operazione,
                        file_origine=record.file_origine,
                        seriale=cert.serial_hex,
                        impronta_sha256=cert.sha256,
                        cert_der=cert.der,
                    )
                )
                updated = replace(
                    record,
                    stato=Stato.ATTIVATO,
                    esito="OK",
                    seriale=cert.serial_hex,
                    data_scadenza=cert.not_after,
                    impronta_sha256=cert.sha256,
                )
                certificates.append((record.id_operazione, cert.pem))
                receipt = request_receipt(record.file_origine, updated)
            settled.append(updated)
            receipts.append(receipt)
        txn.activate_many(now, activations)
        claims = [claim for _record, claim in entries]
        txn.set_receipts(list(zip(claims, receipts, strict=True)))
        return settled, certificates, receipts

    def _get(self, id_op: str) -> RequestRecord:
        """A request as this connection sees it (inside a transaction: uncommitted too)."""
        record = self.store.get(id_op)
        assert record is not None, id_op
        return record

    def _check_key_use(self, inspected: InspectedRequest, batch_keys: dict[str, str]) -> None:
        cf = inspected.codice_fiscale.value
        other = batch_keys.get(inspected.spki_sha256)
        uses = self.store.key_uses(inspected.spki_sha256)
        for use in uses:
            if use.stato is Stato.ANNULLATO and Motivazione(use.motivazione).blocks_key:
                raise RequestRejected(
                    f"this public key belongs to certificate {use.id_operazione}, cancelled "
                    f"as '{Motivazione(use.motivazione).label}': generate a new key pair",
                    code="CHIAVE_BLOCCATA",
                )
        if (other is not None and other != cf) or any(u.codice_fiscale != cf for u in uses):
            raise RequestRejected(
                "this public key is already certified for a different codice fiscale: "
                "every person or company needs its own key pair",
                code="CHIAVE_GIA_CERTIFICATA",
            )

    def _sign_and_activate(self, records: Sequence[RequestRecord]) -> list[RequestRecord]:
        """Recovery: sign requests left IN_GENERAZIONE, commit ATTIVATO with their
        receipts, and write their certificates durably (the caller writes the receipts)."""
        if not records:
            return []
        # Rows recorded by a version that signed before reserving: reserve now.
        unreserved = [r for r in records if not r.seriale]
        if unreserved:
            records = [
                replace(
                    r,
                    seriale=r.seriale or format(leaf_serial(), "x"),
                    data_scadenza=r.data_scadenza or self.ca.leaf_not_after(r.data_richiesta),
                )
                for r in records
            ]
            with self.store.transaction() as txn:
                txn.reserve_serials(
                    [(r.id_operazione, r.seriale, r.data_scadenza) for r in records
                     if r.data_scadenza is not None]
                )  # fmt: skip
        jobs = []
        for record in records:
            csr_der = self.store.csr_der(record.id_operazione)
            assert csr_der is not None
            # Checked when it was accepted: only the public key is needed now, no re-check.
            spki = (
                x509.load_der_x509_csr(csr_der)
                .public_key()
                .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            )
            jobs.append(_sign_job(record, spki))
        issued = self._signatures(self.signer.submit(jobs), len(jobs))
        entries = [(r, self.store.claim_of(r.id_operazione)) for r in records]
        with self.store.transaction() as txn:
            settled, certificates, _ = self._activate(txn, entries, issued)
        self.publisher.write_certificates(certificates)
        return settled

    def _finish(self, batch: Sequence[_Pending]) -> list[Outcome]:
        """Receipts last (after the certificates, ledger and journal are durable), then archive."""
        self.publisher.sync_folders()
        outcomes = []
        for pending in batch:
            assert pending.receipt is not None
            self.publisher.write_receipt(pending.item.name, pending.receipt, sync=False)
            outcomes.append(self._outcome(pending.item.name, pending.receipt))
        self.publisher.sync_folders()
        for pending in batch:
            settle_claim(self.home, pending.item, quarantined=pending.quarantined)
        with self.store.transaction() as txn:
            txn.mark_done([p.item.claim for p in batch])
        return outcomes

    @staticmethod
    def _outcome(name: str, receipt: dict[str, Any]) -> Outcome:
        ids = receipt.get("id_operazione")
        id_text = ",".join(ids) if isinstance(ids, list) else (ids or "")
        errors = receipt.get("errori") or []
        return Outcome(
            file=name,
            tipo=str(receipt.get("tipo")),
            esito=str(receipt.get("esito")),
            id_operazione=id_text,
            codice=errors[0]["codice"] if errors else "",
        )

    # -- cancellations and unknown files --------------------------------------------
    def _process_others(self, items: Sequence[Claim]) -> list[Outcome]:
        """A run of annullamenti (and unknown files) in one transaction, decided in order
        (each sees the ones before it: a person's first cancellation stays the cumulative
        one); then one CRL, one batch of OCSP responses and one ledger update for the run,
        however many it cancelled: at a million rows each costs a second."""
        now = self._clock()
        checked = [self._check_other(item) for item in items]
        cancelled: list[str] = []
        with self.store.transaction() as txn:
            for pending, document in checked:
                item = pending.item
                txn.record_input(
                    claim=item.claim,
                    file=item.name,
                    tipo=pending.tipo,
                    sha256=pending.data.sha256 if pending.data else "",
                    now=now,
                )
                if pending.error is None and document is not None:
                    try:
                        ids = self._cancel(txn, document, now)
                        pending.receipt = cancellation_receipt(
                            item.name, [self._get(i) for i in ids]
                        )
                        cancelled.extend(ids)
                    except InputRejected as exc:
                        pending.error = exc
                if pending.error is not None:
                    pending.receipt = refusal_receipt(item.name, pending.tipo, pending.error)
                assert pending.receipt is not None
                txn.set_receipt(item.claim, pending.receipt)
        if cancelled:
            self.revocation.publish_crl_if_due(force=True, now=now)
            self.revocation.publish_ocsp(cancelled, now=now)
            self._refresh_ledger(cancelled, release_old=False)
            self.publisher.catch_up_journal(self.store)
        outcomes = self._finish([pending for pending, _ in checked])
        self.publisher.release_old_ledger()  # after the receipts (Publisher._replace_ledger)
        return outcomes

    def _check_other(self, item: Claim) -> tuple[_Pending, dict[str, object] | None]:
        """Read a non-request input and tell whether it is an annullamento document."""
        pending = _Pending(item, _tipo_for(item.name))
        self._read(pending)
        if pending.error is not None or pending.data is None:
            return pending, None
        try:
            # A private key is refused (and quarantined 0600) whatever its name says.
            if pending.tipo == "sconosciuto" or b"PRIVATE KEY-----" in pending.data.data:
                self._refuse_unknown(pending.data.data)
            document = load_cancellation_document(pending.data.data)
            if document.get("tipo") != "annullamento":
                pending.tipo = "sconosciuto"
                raise InputRejected(
                    'a JSON file must be an annullamento request ("tipo": "annullamento")',
                    code="INPUT_TIPO_SCONOSCIUTO",
                )
        except InputRejected as exc:
            pending.error = exc
            return pending, None
        return pending, document

    def _cancel(self, txn: Transaction, document: dict[str, object], now: datetime) -> list[str]:
        """In ``txn``: apply one annullamento; the IdOperazione it cancelled."""
        request = parse_cancellation(document)
        named = {i: self.store.get(i) for i in request.id_operazione}
        active = self.store.find(codice_fiscale=request.codice_fiscale, stato=Stato.ATTIVATO)
        first = not self.store.has_cancellation(request.codice_fiscale)
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

    @staticmethod
    def _refuse_unknown(data: bytes) -> None:
        if b"PRIVATE KEY-----" in data:
            raise InputRejected(
                "the file holds a PRIVATE KEY, which must never leave its owner: it was not "
                "processed; send only the certificate request (.csr)",
                code="CHIAVE_PRIVATA_RICEVUTA",
            )
        raise InputRejected(
            "unknown file type: drop a certificate request as *.csr or an annullamento as *.json",
            code="INPUT_TIPO_SCONOSCIUTO",
        )

    # -- rebuilding the outbox ------------------------------------------------------
    def republish(self) -> dict[str, int]:
        """Rebuild every file of ``outbox/`` from the store (certificates byte for byte)."""
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        self.publisher.ensure_layout()
        self.publisher.write_ca(self.ca.root_pem(), self.ca.issuing_pem())
        certificates = 0
        for id_op, der in self.store.iter_certificates():
            pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
            self.publisher.write_certificate(id_op, pem, sync=False)
            certificates += 1
        receipts = 0
        for file, receipt in self.store.iter_receipts():
            self.publisher.write_receipt(file, receipt, sync=False)
            receipts += 1
        self.publisher.sync_folders()
        self._refresh_ledger()
        self.publisher.rebuild_journal(self.store)
        self.revocation.publish_crl(self._clock())
        with self.store.transaction() as txn:
            txn.reset_ocsp()
        while self.revocation.refresh_ocsp(limit=5000, now=self._clock()):
            pass
        return {"certificates": certificates, "receipts": receipts}

    def _refresh_ledger(
        self, changed: Sequence[str] | None = None, *, release_old: bool = True
    ) -> None:
        """Bring ledger.csv up to date (the changed rows, or all of it), then say so.
        Without ``release_old`` the caller frees the replaced file later (after its
        receipts)."""
        if changed is None:
            self.publisher.rebuild_ledger(self.store)
        else:
            self.publisher.update_ledger(self.store, changed)
        with self.store.transaction() as txn:
            txn.mark_ledger(current=True)
        if release_old:
            self.publisher.release_old_ledger()

    # -- time-driven work ------------------------------------------------------------
    def sweep_expired(self) -> int:
        """Move certificates past their DataScadenza to SCADUTO, one journal row each."""
        now = self._clock()
        expired = self.store.expired_active(now)
        if not expired:
            return 0
        with self.store.transaction() as txn:
            for id_op in expired:
                txn.expire(id_op, now=now)
        self._refresh_ledger(expired)
        self.publisher.catch_up_journal(self.store)
        self.revocation.publish_crl_if_due(force=True, now=now)
        return len(expired)

    def periodic(self) -> None:
        """Time-driven work between inputs: expiry, the CRL before its nextUpdate, and a
        checkpoint of the store's WAL."""
        self.sweep_expired()
        self.revocation.publish_crl_if_due(now=self._clock())
        self.store.checkpoint()

    def idle_work(self, *, ahead: bool = True) -> int:
        """One slice of idle work, tens of milliseconds, so a new input never waits longer:
        OCSP responses missing or going stale, as many as one signing round trip holds;
        when none is due and ``ahead`` (a daemon that stays), the next CRL's entries not
        built yet (after a start). Returns how much it did; 0 when nothing is left."""
        now = self._clock()
        done = self.revocation.refresh_ocsp(limit=self._request_chunk(), now=now)
        if not done and ahead:
            done = self.revocation.prepare_crl(limit=_CRL_ENTRIES_SLICE, now=now)
        return done

    def close(self) -> None:
        self.signer.close()
        self.store.close()

