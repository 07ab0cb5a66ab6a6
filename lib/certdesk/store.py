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
  ``forget_input``, ``mark_done``, ``record_originals``, ``mark_pruned``,
  ``record_pruned_folders``. Upkeep: ``mark_ledger``, ``set_meta``,
  ``set_ocsp_until``, ``reset_ocsp``, ``next_crl_number``; issuers: ``add_issuer``.
- **Fact queries**, ``Store`` methods that read committed state and change nothing: a
  request (``get``, ``find``, ``request_for_claim``, ``claim_of``, ``certificate_der``,
  ``csr_der``), the rules' facts (``live_request_with_input``, ``key_uses``, ``find``),
  work to do (``pending_generation``, ``pending_inputs``, ``expired_active``,
  ``ocsp_due``, ``ocsp_rows``, ``revoked_entries``), inputs (``input``,
  ``iter_receipts``; their originals: ``original``, ``pack_end``, ``claims_named``), the
  published projections' rows (``iter_requests``, ``iter_request_texts``, ``request_text``,
  ``iter_certificates``, ``iter_events``, ``iter_journal_rows``, ``last_event_seq``), marks
  (``ledger_is_current``, ``meta``) and the issuing CAs (``issuers``).

Besides these: ``bulk_load`` fills a new store with a history at once (benchmarks), and
``checkpoint`` and ``close`` look after the file. A backend must keep: writers take turns
(``BEGIN IMMEDIATE``); the journal's chain and the IdOperazione counter commit with the
change they record; every lookup the daemon makes per request stays on an index
(tests/test_store_queries.py). ``outbox/`` is a projection of this database
(``certdesk republish``). Its parts, whose names are imported from here: ``store_txn``
(``Transaction``), ``store_journal``, ``store_bulk`` (``bulk_load``), ``store_rows``,
``store_inputs`` (the facts about inputs and their kept originals, ``InputFacts``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .clock import format_utc, parse_utc
from .issuers import IssuerEntry
from .publication import FIRST_ISSUER
from .records import JournalEvent, RequestRecord, RequestText, printable
from .states import Stato
from .store_bulk import HistoricalRequest, load_history
from .store_channels import ChannelEntry, ChannelFacts
from .store_connect import CACHE_KIB, connect_for_reading, connect_for_writing
from .store_inputs import InputFacts, OriginalRecord
from .store_rows import (
    BY_CF,
    BY_KEY,
    EVENT_COLUMNS,
    REQUEST_COLUMNS,
    REQUEST_TEXT,
    Activation,
    InputRecord,
    NewRequest,
    OcspRow,
    journal_event,
    request_record,
)
from .store_txn import Transaction

__all__ = [
    "Activation",
    "ChannelEntry",
    "HistoricalRequest",
    "InputRecord",
    "NewRequest",
    "OcspRow",
    "OriginalRecord",
    "Store",
    "Transaction",
]

class Store(InputFacts, ChannelFacts):
    """A connection to the state store; one per process, used from one thread at a time.
    Its facts about kept originals are ``store_archive.ArchiveFacts``'."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """The store at ``path``; ``read_only``: only to read, and only when it has this
        certdesk's schema (``store_connect``)."""
        self.path = path
        self._conn = (connect_for_reading if read_only else connect_for_writing)(path)

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
        stores, where the daemon would take a day. ``store_bulk.load_history`` says what
        it writes, in which order, and what the options do. Not durable (nothing synced: a
        power loss may leave a store to load again). ValueError if the store is not new."""
        self._conn.execute("PRAGMA synchronous = OFF")
        # A GiB of page cache while loading: the indexes grow in memory, not on disk.
        self._conn.execute("PRAGMA cache_size = -1048576")
        try:
            # The load chains its journal itself: the transaction only commits it whole.
            with self.transaction():
                load_history(
                    self._conn,
                    requests,
                    journal=journal,
                    build_indexes_after=build_indexes_after,
                    on_journal=on_journal,
                )
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

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
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return request_record(row) if row else None

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
            f"SELECT {REQUEST_COLUMNS} FROM requests{BY_CF if codice_fiscale else ''}{where}"
            " ORDER BY id_operazione",
            params,
        ).fetchall()
        return [request_record(r) for r in rows]

    def iter_requests(self) -> Iterator[RequestRecord]:
        """Every request in IdOperazione order, streamed (constant memory)."""
        cursor = self._conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests ORDER BY id_operazione"
        )
        while rows := cursor.fetchmany(10_000):
            yield from (request_record(r) for r in rows)

    def iter_request_texts(self, after: str = "") -> Iterator[list[RequestText]]:
        """Every request (after IdOperazione ``after``) as text (``REQUEST_TEXT_FIELDS``), in
        IdOperazione order, in chunks: the ledger's rebuild reads them without records."""
        return self.iter_request_texts_between(after + "\x00", None)

    def iter_request_texts_between(self, low: str, high: str | None) -> Iterator[list[RequestText]]:
        """``iter_request_texts`` from IdOperazione ``low`` (included) to ``high`` (excluded;
        None: to the last): one part of the columnar ledger. "~" sorts after every id."""
        cursor = self._conn.execute(
            f"{REQUEST_TEXT} WHERE id_operazione >= ? AND id_operazione < ?"
            " ORDER BY id_operazione", (low, "~" if high is None else high))
        while rows := cursor.fetchmany(10_000):
            yield rows

    def ids_changed_since(self, seq: int) -> list[str]:
        """The IdOperazioni of the requests changed by events after ``seq``, sorted."""
        return [r[0] for r in self._conn.execute(
            "SELECT DISTINCT id_operazione FROM events WHERE seq > ? ORDER BY 1", (seq,))]

    def request_text(self, id_op: str) -> RequestText | None:
        """One request as ``iter_request_texts`` gives it."""
        row: RequestText | None = self._conn.execute(
            f"{REQUEST_TEXT} WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return row

    def iter_certificates(self) -> Iterator[tuple[str, bytes, str]]:
        """(IdOperazione, DER, canale) of every certificate."""
        cursor = self._conn.execute(
            "SELECT id_operazione, cert_der, canale FROM requests WHERE cert_der IS NOT NULL"
            " ORDER BY id_operazione"
        )
        while rows := cursor.fetchmany(1_000):
            yield from rows

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
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE stato = ? ORDER BY id_operazione",
            (Stato.IN_GENERAZIONE.value,),
        ).fetchall()
        return [request_record(r) for r in rows]

    def claim_of(self, id_op: str) -> str:
        row = self._conn.execute(
            "SELECT claim FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        return str(row[0]) if row else ""

    def request_for_claim(self, claim: str) -> RequestRecord | None:
        row = self._conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE claim = ?", (claim,)
        ).fetchone()
        return request_record(row) if row else None

    def live_request_with_input(self, sha256: str, spki_sha256: str) -> RequestRecord | None:
        """An earlier request made of the same bytes (so of the same key) that is being
        issued or is valid."""
        if not spki_sha256:
            return None
        row = self._conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {BY_KEY} AND input_sha256 = ?"
            " AND stato IN (?, ?) ORDER BY id_operazione LIMIT 1",
            (spki_sha256[:16], spki_sha256, sha256, Stato.IN_GENERAZIONE.value,
             Stato.ATTIVATO.value),
        ).fetchone()  # fmt: skip
        return request_record(row) if row else None

    def key_uses(self, spki_sha256: str) -> list[RequestRecord]:
        """Every accepted request (certified or being certified) for this public key."""
        if not spki_sha256:
            return []
        rows = self._conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {BY_KEY} AND stato != ?",
            (spki_sha256[:16], spki_sha256, Stato.RIFIUTATO.value),
        ).fetchall()
        return [request_record(r) for r in rows]

    def expired_active(self, now: datetime) -> list[str]:
        rows = self._conn.execute(
            "SELECT id_operazione FROM requests WHERE stato = ? AND data_scadenza <= ?",
            (Stato.ATTIVATO.value, format_utc(now)),
        ).fetchall()
        return [r[0] for r in rows]

    def revoked_entries(
        self, valid_at: datetime, *, issuer: str = FIRST_ISSUER,
        after: tuple[str, str] = ("", ""), limit: int = -1,
    ) -> Iterator[tuple[str, str, str]]:  # fmt: skip
        """(seriale, data_annullamento, motivazione) of the certificates ``issuer`` signed
        that are cancelled and still valid at ``valid_at`` (expired ones leave the CRL), in
        order of cancellation; only those after ``after`` (data_annullamento, seriale) and
        at most ``limit`` of them when given, so the list can be read in slices."""
        cursor = self._conn.execute(
            # The literal state matches the partial index's condition (a bound parameter
            # would not let SQLite use it).
            "SELECT seriale, data_annullamento, motivazione FROM requests"
            " INDEXED BY requests_revoked WHERE emittente = ? AND stato = 'ANNULLATO'"
            " AND data_scadenza > ? AND (data_annullamento, seriale) > (?, ?)"
            " ORDER BY data_annullamento, seriale LIMIT ?",
            (issuer, format_utc(valid_at), *after, limit),
        )
        while rows := cursor.fetchmany(50_000):
            yield from rows

    def iter_events(self, after_seq: int = 0) -> Iterator[JournalEvent]:
        cursor = self._conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq",
            (after_seq,),
        )
        while rows := cursor.fetchmany(10_000):
            yield from (journal_event(r) for r in rows)

    def iter_journal_rows(self, after_seq: int = 0) -> Iterator[list[tuple[str, ...]]]:
        """Events after ``after_seq`` as their ``journal.csv`` fields (``records.journal_line``
        without the objects: times are stored in the journal's own format), in chunks."""
        cursor = self._conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq",
            (after_seq,),
        )
        while rows := cursor.fetchmany(10_000):
            yield [(str(r[0]), *r[1:6], printable(r[6]), r[7], r[8]) for r in rows]

    def last_event_seq(self) -> int:
        row = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def ledger_is_current(self) -> bool:
        return self.meta("ledger_current") == "1"

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def issuers(self) -> list[IssuerEntry]:
        """The issuing CAs ``certdesk rollover`` made (not the first: every home has it)."""
        rows = self._conn.execute(
            "SELECT generazione, nome, attivo_dal FROM emittenti ORDER BY generazione"
        ).fetchall()
        return [IssuerEntry(int(g), n, parse_utc(a)) for g, n, a in rows]

    def ocsp_due(self, before: datetime, limit: int) -> list[OcspRow]:
        """(id, cert_der, stato, data_annullamento, motivazione, seriale, emittente) whose
        OCSP response is missing or goes stale before ``before``."""
        rows = self._conn.execute(
            # INDEXED BY: without statistics SQLite prefers (stato, data_scadenza) and then
            # sorts every valid certificate at every idle pass.
            "SELECT id_operazione, cert_der, stato, COALESCE(data_annullamento, ''), motivazione,"
            " seriale, emittente FROM requests INDEXED BY requests_ocsp"
            " WHERE stato IN ('ATTIVATO', 'ANNULLATO') AND ocsp_until < ?"
            " ORDER BY ocsp_until LIMIT ?",
            (format_utc(before), limit),
        ).fetchall()
        return [tuple(r) for r in rows]

    def revoked_ids(self, valid_at: datetime) -> list[str]:
        """The IdOperazioni of the cancelled certificates still valid at ``valid_at``."""
        return [r[0] for r in self._conn.execute(
            "SELECT id_operazione FROM requests WHERE stato = 'ANNULLATO' AND data_scadenza > ?"
            " ORDER BY id_operazione", (format_utc(valid_at),))]

    def ocsp_rows(self, id_operazioni: Sequence[str]) -> list[OcspRow]:
        """The same rows as ``ocsp_due`` for the given certificates."""
        query = (
            "SELECT id_operazione, cert_der, stato, COALESCE(data_annullamento, ''),"
            " motivazione, seriale, emittente FROM requests"
            " WHERE id_operazione = ? AND cert_der IS NOT NULL"
        )
        found = (self._conn.execute(query, (id_op,)).fetchone() for id_op in id_operazioni)
        return [tuple(row) for row in found if row is not None]
