"""The state store: SQLite in WAL mode, the only source of truth.

``Store`` is the seam a second backend (PostgreSQL, say) would implement: nothing else in
certdesk touches the database but its schema (``schema.sql``, ``migrations.py``). It
offers two kinds of method, and a backend would provide both with the same meaning:

- **State changes**, only inside ``with store.transaction() as txn:``, as ``Transaction``
  methods; the block commits whole or not at all. Requests: ``allocate_id``,
  ``record_new``, ``record_requests``, ``reserve_serials``, ``activate_many``, ``fail``,
  ``cancel``, ``expire``; each checks the contract's diagram (``states.check_transition``)
  and appends its hash-chained journal event in the same transaction. Inputs:
  ``record_input``, ``record_inputs``, ``set_receipt``, ``set_receipts``,
  ``forget_input``, ``mark_done``. Upkeep: ``mark_ledger``, ``set_meta``,
  ``set_ocsp_until``, ``reset_ocsp``, ``next_crl_number``.
- **Fact queries**, ``Store`` methods that read committed state and change nothing: a
  request (``get``, ``find``, ``request_for_claim``, ``claim_of``, ``certificate_der``,
  ``csr_der``), the rules' facts (``live_request_with_input``, ``key_uses``,
  ``has_cancellation``), work to do (``pending_generation``, ``pending_inputs``,
  ``expired_active``, ``ocsp_due``, ``ocsp_rows``, ``revoked_entries``), inputs
  (``input``, ``iter_receipts``), the published projections' rows (``iter_requests``,
  ``iter_ledger_rows``, ``ledger_row``, ``iter_certificates``, ``iter_events``,
  ``iter_journal_rows``, ``last_event_seq``) and marks (``ledger_is_current``, ``meta``).

Besides these: ``bulk_load`` fills a new store with a history at once (benchmarks), and
``checkpoint`` and ``close`` look after the file. What a backend must keep: writers take
turns (``BEGIN IMMEDIATE``); the journal's chain and the IdOperazione counter commit with
the change they record; every lookup the daemon makes per request stays on an index, so
its cost does not grow with the store (tests/test_store_queries.py). The schema
(``schema.sql``) and its migrations (``migrations.py``) are SQLite's; another backend
would have its own.

``outbox/`` is a projection of this database, rebuilt by ``certdesk republish``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .clock import format_utc, parse_utc
from .codes import refusal
from .errors import StoreError
from .migrations import index_statements, prepare
from .records import GENESIS_HASH, JournalEvent, RequestRecord, chain_hash, printable
from .states import Stato, check_transition

__all__ = [
    "Activation",
    "HistoricalRequest",
    "InputRecord",
    "NewRequest",
    "Store",
    "Transaction",
]

# 32 MiB of page cache (SQLite's default is 2 MiB): the upper levels of the indexes of a
# million-request store stay in memory between batches.
_CACHE_KIB = 32 * 1024

# Without statistics SQLite prefers (stato, data_scadenza) for "codice_fiscale = ? AND
# stato = ?" and reads every row in that state: a second at a million rows, for a lookup
# that concerns a handful. A person's rows are found by codice fiscale, always.
_BY_CF = " INDEXED BY requests_codice_fiscale"

# A key's rows through requests_spki_prefix: the prefix (the index's expression, as
# written there) finds them, the whole hash decides; "spki_sha256 != ''" is the partial
# index's condition, without which SQLite would scan the whole table. The "+" keeps
# SQLite from propagating the constant into the prefix expression, which would no longer
# match the index's (it then reads the whole index).
_BY_KEY = "substr(spki_sha256, 1, 16) = ? AND +spki_sha256 = ? AND spki_sha256 != ''"

_LEDGER_ROWS = (
    "SELECT id_operazione, codice_fiscale, profilo,"
    " CASE WHEN stato IN ('ATTIVATO', 'ANNULLATO', 'SCADUTO')"
    " THEN id_operazione || '.pem' ELSE '' END,"
    " stato, data_richiesta, COALESCE(data_scadenza, ''), esito, COALESCE(seriale, ''),"
    " impronta_sha256, motivazione, COALESCE(data_annullamento, ''), file_origine"
    " FROM requests"
)

_LOAD_COLUMNS = (
    "id_operazione, codice_fiscale, profilo, stato, data_richiesta, esito, file_origine, "
    "claim, input_sha256, spki_sha256, csr_der, data_scadenza, seriale, impronta_sha256, "
    "cert_der, motivazione, data_annullamento, nota, operatore, ocsp_until"
)

_REQUEST_COLUMNS = (
    "id_operazione, codice_fiscale, profilo, stato, data_richiesta, esito, file_origine, "
    "data_scadenza, seriale, impronta_sha256, spki_sha256, motivazione, data_annullamento, "
    "nota, operatore"
)


def _record(row: sqlite3.Row | tuple[Any, ...]) -> RequestRecord:
    (
        id_op,
        cf,
        profilo,
        stato,
        richiesta,
        esito,
        origine,
        scadenza,
        seriale,
        impronta,
        spki,
        motivazione,
        annullamento,
        nota,
        operatore,
    ) = tuple(row)
    return RequestRecord(
        id_operazione=id_op,
        codice_fiscale=cf,
        profilo=profilo,
        stato=Stato(stato),
        data_richiesta=parse_utc(richiesta),
        esito=esito,
        file_origine=origine,
        data_scadenza=parse_utc(scadenza) if scadenza else None,
        seriale=seriale or "",
        impronta_sha256=impronta,
        spki_sha256=spki,
        motivazione=motivazione,
        data_annullamento=parse_utc(annullamento) if annullamento else None,
        nota=nota,
        operatore=operatore,
    )


def _event(row: tuple[Any, ...]) -> JournalEvent:
    seq, data, id_op, da, a, motivazione, origine, digest = row
    return JournalEvent(seq, parse_utc(data), id_op, da, a, motivazione, origine, digest)


@dataclass(frozen=True)
class InputRecord:
    claim: str
    file: str
    tipo: str
    sha256: str
    receipt: dict[str, Any] | None
    quarantined: bool
    done: bool


@dataclass(frozen=True)
class NewRequest:
    """A request's first row (``Transaction.record_requests``)."""

    id_operazione: str
    stato: Stato
    codice_fiscale: str
    profilo: str
    esito: str
    file_origine: str
    claim: str
    input_sha256: str
    spki_sha256: str = ""
    csr_der: bytes | None = None
    # Reserved before signing: the certificate will carry exactly these.
    seriale: str = ""
    data_scadenza: datetime | None = None


@dataclass(frozen=True)
class Activation:
    """A signed certificate for a request IN_GENERAZIONE (``Transaction.activate_many``)."""

    id_op: str
    file_origine: str
    seriale: str  # must be the serial reserved for the request
    impronta_sha256: str
    cert_der: bytes


@dataclass(frozen=True)
class HistoricalRequest:
    """A request as a past run of the daemon left it (``Store.bulk_load``): its row in its
    final state and the receipt of its input.

    Its journal follows from its state, as the daemon writes it: a request RIFIUTATO was
    refused on arrival, (new) → RIFIUTATO; every other one was accepted and, unless still
    IN_GENERAZIONE, signed at ``data_richiesta``: (new) → IN_GENERAZIONE → ATTIVATO. One
    ANNULLATO was then cancelled at ``data_annullamento`` (with ``motivazione``), one
    SCADUTO expired at ``data_scadenza``. (A signature that failed, IN_GENERAZIONE →
    RIFIUTATO, is not such a history.)"""

    id_operazione: str
    codice_fiscale: str
    profilo: str
    stato: Stato
    data_richiesta: datetime
    esito: str
    file_origine: str
    claim: str
    input_sha256: str
    # The receipt of the input (tipo "richiesta", named file_origine): the input's row is
    # recorded done, and quarantined unless the receipt says OK, as the daemon settles it.
    receipt: dict[str, Any] | None = None
    spki_sha256: str = ""
    csr_der: bytes | None = None
    seriale: str = ""
    data_scadenza: datetime | None = None
    impronta_sha256: str = ""
    cert_der: bytes | None = None
    motivazione: str = ""
    data_annullamento: datetime | None = None
    nota: str = ""
    operatore: str = ""
    ocsp_until: datetime | None = None  # when its published OCSP response goes stale


# The journal of a HistoricalRequest's arrival, by its final state: (from, to) pairs.
_ARRIVAL: dict[Stato, tuple[tuple[str, str], ...]] = {
    Stato.RIFIUTATO: (("", "RIFIUTATO"),),
    Stato.IN_GENERAZIONE: (("", "IN_GENERAZIONE"),),
    Stato.ATTIVATO: (("", "IN_GENERAZIONE"), ("IN_GENERAZIONE", "ATTIVATO")),
    Stato.ANNULLATO: (("", "IN_GENERAZIONE"), ("IN_GENERAZIONE", "ATTIVATO")),
    Stato.SCADUTO: (("", "IN_GENERAZIONE"), ("IN_GENERAZIONE", "ATTIVATO")),
}
_LOAD_BATCH = 20_000
# Receipts as ``Transaction.set_receipts`` stores them (one encoder: json.dumps builds one
# per call when given an option).
_RECEIPT_JSON = json.JSONEncoder(ensure_ascii=False)


class Transaction:
    """One write transaction (``BEGIN IMMEDIATE``): either all of it lands, or none."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._head: str | None = None
        self._next_seq = 0
        self._next_id: int | None = None  # the IdOperazione counter, written before COMMIT
        self._id_dirty = False

    # -- journal ---------------------------------------------------------------------
    def _append_event(
        self, now: datetime, id_op: str, da: Stato | None, a: Stato, motivazione: str, origine: str
    ) -> None:
        self._append_events(now, [(id_op, da, a, motivazione, origine)])

    def _append_events(
        self, now: datetime, changes: Sequence[tuple[str, Stato | None, Stato, str, str]]
    ) -> None:
        """Journal rows for (id, from, to, motivazione, file) changes, chained in order."""
        data = format_utc(now)
        self._append_journal(
            [
                (data, id_op, da.value if da else "", a.value, motivazione, origine)
                for id_op, da, a, motivazione, origine in changes
            ]
        )

    def _append_journal(
        self,
        changes: Sequence[tuple[str, str, str, str, str, str]],
        published: list[tuple[str, ...]] | None = None,
    ) -> None:
        """Journal rows for (data, id, from, to, motivazione, file) changes, chained in
        order; times and states as the journal writes them. Each row's ``journal.csv``
        fields (as ``Store.iter_journal_rows`` gives them) go to ``published`` if given."""
        if self._head is None:
            row = self._conn.execute(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            self._next_seq, self._head = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
        rows = []
        head, seq = self._head, self._next_seq
        for data, id_op, da, a, motivazione, origine in changes:
            fields = (str(seq), data, id_op, da, a, motivazione, printable(origine))
            head = chain_hash(head, fields)
            rows.append((seq, data, id_op, da, a, motivazione, origine, head))
            if published is not None:
                published.append((*fields, head))
            seq += 1
        self._conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._head, self._next_seq = head, seq

    # -- requests --------------------------------------------------------------------
    def allocate_id(self, now: datetime) -> str:
        """Time-ordered, unique, file-name safe (``record_requests`` takes it ready-made);
        the counter commits with the request, so a crash can never hand the same
        IdOperazione out twice."""
        if self._next_id is None:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
            self._next_id = int(row[0]) if row else 1
        number = self._next_id
        self._next_id += 1
        self._id_dirty = True
        return f"{now:%Y%m%d}-{number:09d}"

    def _before_commit(self) -> None:
        if self._id_dirty:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)",
                (str(self._next_id),),
            )
            self._id_dirty = False

    def record_new(
        self,
        *,
        stato: Stato,
        now: datetime,
        codice_fiscale: str,
        profilo: str,
        esito: str,
        file_origine: str,
        claim: str,
        input_sha256: str,
        spki_sha256: str = "",
        csr_der: bytes | None = None,
    ) -> str:
        check_transition(None, stato)
        id_op = self.allocate_id(now)
        self._conn.execute(
            "INSERT INTO requests (id_operazione, codice_fiscale, profilo, stato, data_richiesta,"
            " esito, file_origine, claim, input_sha256, spki_sha256, csr_der)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                id_op,
                codice_fiscale,
                profilo,
                stato.value,
                format_utc(now),
                esito,
                file_origine,
                claim,
                input_sha256,
                spki_sha256,
                csr_der,
            ),
        )
        self._append_event(now, id_op, None, stato, "", file_origine)
        return id_op

    def record_requests(self, now: datetime, requests: Sequence[NewRequest]) -> None:
        """``record_new`` for a batch: one statement per table for all of them."""
        for request in requests:
            check_transition(None, request.stato)
        data = format_utc(now)
        self._conn.executemany(
            "INSERT INTO requests (id_operazione, codice_fiscale, profilo, stato, data_richiesta,"
            " esito, file_origine, claim, input_sha256, spki_sha256, csr_der, seriale,"
            " data_scadenza) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.id_operazione,
                    r.codice_fiscale,
                    r.profilo,
                    r.stato.value,
                    data,
                    r.esito,
                    r.file_origine,
                    r.claim,
                    r.input_sha256,
                    r.spki_sha256,
                    r.csr_der,
                    r.seriale or None,
                    format_utc(r.data_scadenza) if r.data_scadenza else None,
                )
                for r in requests
            ],
        )
        self._append_events(
            now, [(r.id_operazione, None, r.stato, "", r.file_origine) for r in requests]
        )

    def _load_history(
        self,
        requests: Iterable[HistoricalRequest],
        *,
        journal: bool,
        on_journal: Callable[[list[tuple[str, ...]]], None] | None,
    ) -> None:
        """``Store.bulk_load``'s rows, written in batches (see there)."""
        if self._conn.execute(
            "SELECT 1 FROM requests UNION ALL SELECT 1 FROM events LIMIT 1"
        ).fetchone():
            raise ValueError("bulk_load fills a new store; this one has requests already")
        rows: list[tuple[Any, ...]] = []
        changes: list[tuple[str, str, str, str, str, str]] = []
        inputs: list[tuple[Any, ...]] = []
        later: list[tuple[str, str, str, str, str, str]] = []

        def flush() -> None:
            self._conn.executemany(
                f"INSERT INTO requests ({_LOAD_COLUMNS}) VALUES ({', '.join('?' * 20)})", rows
            )
            self._append_chunk(changes, on_journal)
            self._conn.executemany(
                "INSERT INTO inputs (claim, file, tipo, sha256, received, receipt, quarantined,"
                " done) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                inputs,
            )
            rows.clear()
            changes.clear()
            inputs.clear()

        last_number = 0
        # Each row is formatted as it comes: the times its maker just formatted (for its
        # receipt) are still in format_utc's cache.
        for r in requests:
            id_op, origine = r.id_operazione, r.file_origine
            richiesta = format_utc(r.data_richiesta)
            scadenza = format_utc(r.data_scadenza) if r.data_scadenza else None
            annullamento = format_utc(r.data_annullamento) if r.data_annullamento else None
            rows.append(
                (id_op, r.codice_fiscale, r.profilo, r.stato.value, richiesta, r.esito,
                 origine, r.claim, r.input_sha256, r.spki_sha256, r.csr_der, scadenza,
                 r.seriale or None, r.impronta_sha256, r.cert_der, r.motivazione, annullamento,
                 r.nota, r.operatore, format_utc(r.ocsp_until) if r.ocsp_until else "")
            )  # fmt: skip
            last_number = max(last_number, int(id_op.rpartition("-")[2]))
            if journal:
                for da, a in _ARRIVAL[r.stato]:
                    changes.append((richiesta, id_op, da, a, "", origine))
                if r.stato is Stato.ANNULLATO:
                    if annullamento is None:
                        raise ValueError(f"{id_op}: ANNULLATO without a data_annullamento")
                    later.append(
                        (annullamento, id_op, "ATTIVATO", "ANNULLATO", r.motivazione, origine)
                    )
                elif r.stato is Stato.SCADUTO:
                    if scadenza is None:
                        raise ValueError(f"{id_op}: SCADUTO without a data_scadenza")
                    later.append((scadenza, id_op, "ATTIVATO", "SCADUTO", "", origine))
                if r.receipt is not None:
                    inputs.append(
                        (r.claim, origine, "richiesta", r.input_sha256, richiesta,
                         _RECEIPT_JSON.encode(r.receipt), int(r.receipt.get("esito") != "OK"))
                    )  # fmt: skip
            if len(rows) >= _LOAD_BATCH:
                flush()
        flush()
        # The later changes in order of time (then of IdOperazione), after every arrival.
        later.sort()
        for start in range(0, len(later), _LOAD_BATCH):
            self._append_chunk(later[start : start + _LOAD_BATCH], on_journal)
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)",
            (str(last_number + 1),),
        )

    def _append_chunk(
        self,
        changes: Sequence[tuple[str, str, str, str, str, str]],
        on_journal: Callable[[list[tuple[str, ...]]], None] | None,
    ) -> None:
        published: list[tuple[str, ...]] | None = [] if on_journal else None
        self._append_journal(changes, published)
        if on_journal and published:
            on_journal(published)

    def reserve_serials(self, reservations: Sequence[tuple[str, str, datetime]]) -> None:
        """(id, serial, not after) for requests IN_GENERAZIONE recorded without a serial
        (by an older version): every signature has its serial in the store first."""
        self._conn.executemany(
            "UPDATE requests SET seriale = ?, data_scadenza = ?"
            " WHERE id_operazione = ? AND stato = 'IN_GENERAZIONE' AND seriale IS NULL",
            [(serial, format_utc(until), id_op) for id_op, serial, until in reservations],
        )

    def activate_many(self, now: datetime, activations: Sequence[Activation]) -> None:
        """``activate`` for a batch of requests the caller knows are IN_GENERAZIONE with
        the serial they were signed with; the update matches only such rows, so a wrong
        belief fails the transaction. The serial and the end of validity were written
        with the decision: they are not written again (no index is touched twice)."""
        if not activations:
            return
        check_transition(Stato.IN_GENERAZIONE, Stato.ATTIVATO)
        cursor = self._conn.executemany(
            "UPDATE requests SET stato = 'ATTIVATO', impronta_sha256 = ?, cert_der = ?,"
            " esito = 'OK' WHERE id_operazione = ? AND stato = 'IN_GENERAZIONE'"
            " AND seriale = ?",
            [(a.impronta_sha256, a.cert_der, a.id_op, a.seriale) for a in activations],
        )
        if cursor.rowcount != len(activations):
            raise refusal(
                "TRANSIZIONE_NON_VALIDA",
                "attivazione",
                non_attivabili=len(activations) - cursor.rowcount,
                totale=len(activations),
            )
        self._append_events(
            now,
            [
                (a.id_op, Stato.IN_GENERAZIONE, Stato.ATTIVATO, "", a.file_origine)
                for a in activations
            ],
        )

    def _current(self, id_op: str) -> tuple[Stato, str]:
        row = self._conn.execute(
            "SELECT stato, file_origine FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        if row is None:
            raise refusal("ID_OPERAZIONE_SCONOSCIUTO", id_operazione=id_op)
        return Stato(row[0]), row[1]

    def fail(self, id_op: str, *, now: datetime, esito: str) -> None:
        current, origine = self._current(id_op)
        check_transition(current, Stato.RIFIUTATO, id_op)
        # No certificate carries the serial reserved for it: the ledger shows none.
        self._conn.execute(
            "UPDATE requests SET stato = ?, esito = ?, seriale = NULL, data_scadenza = NULL"
            " WHERE id_operazione = ?",
            (Stato.RIFIUTATO.value, esito, id_op),
        )
        self._append_event(now, id_op, current, Stato.RIFIUTATO, "", origine)

    def cancel(
        self, id_op: str, *, now: datetime, motivazione: str, nota: str, operatore: str
    ) -> None:
        current, origine = self._current(id_op)
        check_transition(current, Stato.ANNULLATO, id_op)
        self._conn.execute(
            "UPDATE requests SET stato = ?, motivazione = ?, data_annullamento = ?, nota = ?,"
            " operatore = ?, ocsp_until = '' WHERE id_operazione = ?",
            (Stato.ANNULLATO.value, motivazione, format_utc(now), nota, operatore, id_op),
        )
        self._append_event(now, id_op, current, Stato.ANNULLATO, motivazione, origine)
        self.mark_ledger(current=False)

    def expire(self, id_op: str, *, now: datetime) -> None:
        current, origine = self._current(id_op)
        check_transition(current, Stato.SCADUTO, id_op)
        self._conn.execute(
            "UPDATE requests SET stato = ? WHERE id_operazione = ?", (Stato.SCADUTO.value, id_op)
        )
        self._append_event(now, id_op, current, Stato.SCADUTO, "", origine)
        self.mark_ledger(current=False)

    # -- inputs ----------------------------------------------------------------------
    def record_input(self, *, claim: str, file: str, tipo: str, sha256: str, now: datetime) -> None:
        self._conn.execute(
            "INSERT INTO inputs (claim, file, tipo, sha256, received) VALUES (?, ?, ?, ?, ?)",
            (claim, file, tipo, sha256, format_utc(now)),
        )

    def record_inputs(self, now: datetime, inputs: Sequence[tuple[str, str, str, str]]) -> None:
        """``record_input`` for (claim, file, tipo, sha256) rows."""
        received = format_utc(now)
        self._conn.executemany(
            "INSERT INTO inputs (claim, file, tipo, sha256, received) VALUES (?, ?, ?, ?, ?)",
            [(*row, received) for row in inputs],
        )

    def set_receipt(self, claim: str, receipt: dict[str, Any]) -> None:
        """Record an input's outcome; a refused input is kept in quarantine."""
        self.set_receipts([(claim, receipt)])

    def set_receipts(self, receipts: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self._conn.executemany(
            "UPDATE inputs SET receipt = ?, quarantined = ? WHERE claim = ?",
            [
                (json.dumps(r, ensure_ascii=False), int(r.get("esito") != "OK"), claim)
                for claim, r in receipts
            ],
        )

    def forget_input(self, claim: str) -> None:
        self._conn.execute("DELETE FROM inputs WHERE claim = ? AND receipt IS NULL", (claim,))

    def mark_done(self, claims: list[str]) -> None:
        self._conn.executemany("UPDATE inputs SET done = 1 WHERE claim = ?", [(c,) for c in claims])

    def mark_ledger(self, *, current: bool) -> None:
        """Whether ledger.csv shows every row as the store has it. A change to an existing
        row (annullamento, expiry) clears the mark in its own transaction, and only a
        finished ledger update sets it again: a start-up after a crash in between knows
        it must rebuild. New rows need no mark: their inputs stay unfinished until then."""
        self.set_meta("ledger_current", "1" if current else "0")

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def set_ocsp_until(self, rows: list[tuple[str, str]]) -> None:
        """(id_operazione, until) pairs: when each published OCSP response goes stale."""
        self._conn.executemany(
            "UPDATE requests SET ocsp_until = ? WHERE id_operazione = ?",
            [(until, id_op) for id_op, until in rows],
        )

    def reset_ocsp(self) -> None:
        self._conn.execute("UPDATE requests SET ocsp_until = '' WHERE ocsp_until != ''")

    def next_crl_number(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'crl_number'").fetchone()
        number = int(row[0]) + 1 if row else 1
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('crl_number', ?)", (str(number),)
        )
        return number


class Store:
    """A connection to the state store; one per process, used from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Operators' names and notes live here: 0600 like the keys (SQLite gives its
            # -wal and -shm files the database file's mode).
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed transaction survives power loss, not only a killed process;
            # receipts are written only after the commit that they report.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            # Checkpoints copy the WAL into the database file (read, write, fsync): at
            # SQLite's default of every 1000 pages that is every ~100 requests, on the
            # issuing path. The daemon checkpoints when idle (``checkpoint``); this bound
            # (64 MiB) only keeps the WAL from growing without limit under endless load.
            self._conn.execute("PRAGMA wal_autocheckpoint = 16384")
            prepare(self._conn)  # schema.sql for a new store, migrations for an old one
        except (sqlite3.Error, StoreError) as exc:
            with contextlib.suppress(AttributeError, sqlite3.Error):
                self._conn.close()
            reason = exc.message if isinstance(exc, StoreError) else exc
            raise refusal("ARCHIVIO_NON_DISPONIBILE", file=path, errore=reason) from None

    def close(self) -> None:
        self._conn.close()

    def bulk_load(
        self,
        requests: Iterable[HistoricalRequest],
        *,
        journal: bool = True,
        build_indexes_after: bool = False,
        on_journal: Callable[[list[tuple[str, ...]]], None] | None = None,
    ) -> None:
        """Fill a new, empty store with ``requests`` (in IdOperazione order) and their
        history, in one transaction: a million requests in minutes, for the benchmarks'
        stores, where the daemon would take a day.

        Each request gets its row as given, the journal events its ``HistoricalRequest``
        implies and, with a receipt, its input's row. The journal is hash-chained as the
        daemon chains it, in this order: the requests' arrivals, in the order given, then
        the later changes (annullamenti, expiries) in order of time, then of IdOperazione.
        The IdOperazione counter continues after the highest number loaded.

        ``on_journal``, if given, receives the journal's rows in batches as they are
        chained, each as ``iter_journal_rows`` gives it: ``journal.csv``, the journal's
        projection, can then be written in the same pass instead of read back.

        ``journal=False`` loads the requests' rows alone: no journal, no inputs (a store
        only read for its requests, e.g. the CRL benchmark's; ``certdesk verify`` would
        refuse it). ``build_indexes_after`` drops the indexes and builds each once after
        the rows: faster, but a built index is packed full, so that the first requests
        added afterwards split its pages at nearly every insert, which a store grown by
        the daemon does not do. By default the indexes grow with the rows.

        Not durable: the load syncs nothing (``synchronous = OFF`` while it runs), so a
        power loss before the system has written the file out (``os.sync()``) may leave
        it corrupt, a store to throw away and load again. Raises ``ValueError`` if the
        store has requests or events already."""
        self._conn.execute("PRAGMA synchronous = OFF")
        # A GiB of page cache while loading: the indexes grow in memory, not on disk.
        self._conn.execute("PRAGMA cache_size = -1048576")
        try:
            with self.transaction() as txn:
                indexes = index_statements()
                if build_indexes_after:
                    for name in indexes:
                        self._conn.execute(f"DROP INDEX {name}")
                txn._load_history(requests, journal=journal, on_journal=on_journal)
                if build_indexes_after:
                    for statement in indexes.values():
                        self._conn.execute(statement)
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (idle time: readers are not blocked)."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises.

        A COMMIT that fails (a full disk: SQLITE_FULL, SQLITE_IOERR) leaves the transaction
        open, and SQLite may already have rolled one back by itself after such an error:
        either way the connection is left with no transaction, ready for the next."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            txn = Transaction(self._conn)
            yield txn
            txn._before_commit()
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # The error being raised says what went wrong; a failed ROLLBACK (an I/O error
        # again) would only hide it. The next BEGIN tells whether it persists.
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    # -- queries ---------------------------------------------------------------------
    def get(self, id_op: str) -> RequestRecord | None:
        row = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return _record(row) if row else None

    def find(
        self, *, codice_fiscale: str | None = None, stato: Stato | None = None
    ) -> list[RequestRecord]:
        clauses, params = [], []
        if codice_fiscale is not None:
            clauses.append("codice_fiscale = ?")
            params.append(codice_fiscale)
        if stato is not None:
            clauses.append("stato = ?")
            params.append(stato.value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests{_BY_CF if codice_fiscale else ''}{where}"
            " ORDER BY id_operazione",
            params,
        ).fetchall()
        return [_record(r) for r in rows]

    def iter_requests(self) -> Iterator[RequestRecord]:
        """Every request in IdOperazione order, streamed (constant memory)."""
        cursor = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests ORDER BY id_operazione"
        )
        while rows := cursor.fetchmany(10_000):
            yield from (_record(r) for r in rows)

    def iter_ledger_rows(self, after: str = "") -> Iterator[list[tuple[str, ...]]]:
        """Every request (after IdOperazione ``after``) as its ``ledger.csv`` fields
        (``records.ledger_line`` without the objects), in IdOperazione order, in chunks:
        the ledger rebuild's fast path."""
        cursor = self._conn.execute(
            f"{_LEDGER_ROWS} WHERE id_operazione > ? ORDER BY id_operazione", (after,)
        )
        while rows := cursor.fetchmany(10_000):
            yield [(*r[:12], printable(r[12])) for r in rows]

    def ledger_row(self, id_op: str) -> tuple[str, ...] | None:
        """One request's ``ledger.csv`` fields, as ``iter_ledger_rows`` gives them."""
        row = self._conn.execute(f"{_LEDGER_ROWS} WHERE id_operazione = ?", (id_op,)).fetchone()
        return (*row[:12], printable(row[12])) if row else None

    def iter_certificates(self) -> Iterator[tuple[str, bytes]]:
        cursor = self._conn.execute(
            "SELECT id_operazione, cert_der FROM requests WHERE cert_der IS NOT NULL"
            " ORDER BY id_operazione"
        )
        while rows := cursor.fetchmany(1_000):
            yield from ((r[0], r[1]) for r in rows)

    def certificate_der(self, id_op: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT cert_der FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return row[0] if row else None

    def csr_der(self, id_op: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT csr_der FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return row[0] if row else None

    def pending_generation(self) -> list[RequestRecord]:
        rows = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE stato = ? ORDER BY id_operazione",
            (Stato.IN_GENERAZIONE.value,),
        ).fetchall()
        return [_record(r) for r in rows]

    def claim_of(self, id_op: str) -> str:
        row = self._conn.execute(
            "SELECT claim FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return str(row[0]) if row else ""

    def request_for_claim(self, claim: str) -> RequestRecord | None:
        row = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE claim = ?", (claim,)
        ).fetchone()
        return _record(row) if row else None

    def live_request_with_input(self, sha256: str, spki_sha256: str) -> RequestRecord | None:
        """An earlier request made of the same bytes (so of the same key) that is being
        issued or is valid."""
        if not spki_sha256:
            return None
        row = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE {_BY_KEY} AND input_sha256 = ?"
            " AND stato IN (?, ?) ORDER BY id_operazione LIMIT 1",
            (spki_sha256[:16], spki_sha256, sha256, Stato.IN_GENERAZIONE.value,
             Stato.ATTIVATO.value),
        ).fetchone()  # fmt: skip
        return _record(row) if row else None

    def key_uses(self, spki_sha256: str) -> list[RequestRecord]:
        """Every accepted request (certified or being certified) for this public key."""
        if not spki_sha256:
            return []
        rows = self._conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE {_BY_KEY} AND stato != ?",
            (spki_sha256[:16], spki_sha256, Stato.RIFIUTATO.value),
        ).fetchall()
        return [_record(r) for r in rows]

    def has_cancellation(self, codice_fiscale: str) -> bool:
        row = self._conn.execute(
            f"SELECT 1 FROM requests{_BY_CF} WHERE codice_fiscale = ? AND stato = ? LIMIT 1",
            (codice_fiscale, Stato.ANNULLATO.value),
        ).fetchone()
        return row is not None

    def expired_active(self, now: datetime) -> list[str]:
        rows = self._conn.execute(
            "SELECT id_operazione FROM requests WHERE stato = ? AND data_scadenza <= ?",
            (Stato.ATTIVATO.value, format_utc(now)),
        ).fetchall()
        return [r[0] for r in rows]

    def revoked_entries(
        self, valid_at: datetime, *, after: tuple[str, str] = ("", ""), limit: int = -1
    ) -> Iterator[tuple[str, str, str]]:
        """(seriale, data_annullamento, motivazione) of the cancelled certificates still
        valid at ``valid_at`` (expired ones leave the CRL), in order of cancellation; only
        those after ``after`` (data_annullamento, seriale) and at most ``limit`` of them
        when given, so the list can be read in slices."""
        cursor = self._conn.execute(
            # The literal state matches the partial index's condition (a bound parameter
            # would not let SQLite use it).
            "SELECT seriale, data_annullamento, motivazione FROM requests"
            " INDEXED BY requests_revoked WHERE stato = 'ANNULLATO' AND data_scadenza > ?"
            " AND (data_annullamento, seriale) > (?, ?)"
            " ORDER BY data_annullamento, seriale LIMIT ?",
            (format_utc(valid_at), *after, limit),
        )
        while rows := cursor.fetchmany(50_000):
            yield from rows

    def iter_events(self, after_seq: int = 0) -> Iterator[JournalEvent]:
        cursor = self._conn.execute(
            "SELECT seq, data, id_operazione, da_stato, a_stato, motivazione, file_origine, hash"
            " FROM events WHERE seq > ? ORDER BY seq",
            (after_seq,),
        )
        while rows := cursor.fetchmany(10_000):
            yield from (_event(r) for r in rows)

    def iter_journal_rows(self, after_seq: int = 0) -> Iterator[list[tuple[str, ...]]]:
        """Events after ``after_seq`` as their ``journal.csv`` fields (``records.journal_line``
        without the objects: times are stored in the journal's own format), in chunks."""
        cursor = self._conn.execute(
            "SELECT seq, data, id_operazione, da_stato, a_stato, motivazione, file_origine, hash"
            " FROM events WHERE seq > ? ORDER BY seq",
            (after_seq,),
        )
        while rows := cursor.fetchmany(10_000):
            yield [(str(r[0]), *r[1:6], printable(r[6]), r[7]) for r in rows]

    def last_event_seq(self) -> int:
        row = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def input(self, claim: str) -> InputRecord | None:
        row = self._conn.execute(
            "SELECT claim, file, tipo, sha256, receipt, quarantined, done FROM inputs"
            " WHERE claim = ?",
            (claim,),
        ).fetchone()
        if row is None:
            return None
        return InputRecord(
            row[0],
            row[1],
            row[2],
            row[3],
            json.loads(row[4]) if row[4] else None,
            bool(row[5]),
            bool(row[6]),
        )

    def pending_inputs(self) -> list[InputRecord]:
        rows = self._conn.execute(
            "SELECT claim FROM inputs WHERE done = 0 ORDER BY claim"
        ).fetchall()
        return [rec for (claim,) in rows if (rec := self.input(claim)) is not None]

    def iter_receipts(self) -> Iterator[tuple[str, dict[str, Any]]]:
        cursor = self._conn.execute(
            "SELECT file, receipt FROM inputs WHERE receipt IS NOT NULL ORDER BY claim"
        )
        while rows := cursor.fetchmany(10_000):
            yield from ((r[0], json.loads(r[1])) for r in rows)

    def ledger_is_current(self) -> bool:
        return self.meta("ledger_current") == "1"

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def ocsp_due(
        self, before: datetime, limit: int
    ) -> list[tuple[str, bytes, str, str, str, str]]:
        """(id, cert_der, stato, data_annullamento, motivazione, seriale) whose OCSP
        response is missing or goes stale before ``before``."""
        rows = self._conn.execute(
            # INDEXED BY: without statistics SQLite prefers (stato, data_scadenza) and then
            # sorts every valid certificate, seconds at a million, at every idle pass.
            "SELECT id_operazione, cert_der, stato, COALESCE(data_annullamento, ''), motivazione,"
            " seriale FROM requests INDEXED BY requests_ocsp"
            " WHERE stato IN ('ATTIVATO', 'ANNULLATO') AND ocsp_until < ?"
            " ORDER BY ocsp_until LIMIT ?",
            (format_utc(before), limit),
        ).fetchall()
        return [tuple(r) for r in rows]

    def ocsp_rows(
        self, id_operazioni: Sequence[str]
    ) -> list[tuple[str, bytes, str, str, str, str]]:
        """The same rows as ``ocsp_due`` for the given certificates."""
        rows = []
        for id_op in id_operazioni:
            row = self._conn.execute(
                "SELECT id_operazione, cert_der, stato, COALESCE(data_annullamento, ''),"
                " motivazione, seriale FROM requests"
                " WHERE id_operazione = ? AND cert_der IS NOT NULL",
                (id_op,),
            ).fetchone()
            if row is not None:
                rows.append(tuple(row))
        return rows
