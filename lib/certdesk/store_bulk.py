"""A whole history written at once (``Store.bulk_load``): the benchmarks' stores.

Part of the store (``store.py``): ``Store.bulk_load`` calls ``load_history`` in a
transaction; the journal goes through ``JournalChain``, so it is chained exactly as the
daemon chains it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import format_utc
from .migrations import index_statements
from .states import Stato
from .store_journal import JournalChain
from .store_rows import JournalChange

__all__ = ["HistoricalRequest", "load_history"]


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

_LOAD_COLUMNS = (
    "id_operazione, codice_fiscale, profilo, stato, data_richiesta, esito, file_origine, "
    "claim, input_sha256, spki_sha256, csr_der, data_scadenza, seriale, impronta_sha256, "
    "cert_der, motivazione, data_annullamento, nota, operatore, ocsp_until"
)


def load_history(
    conn: sqlite3.Connection,
    requests: Iterable[HistoricalRequest],
    *,
    journal: bool,
    build_indexes_after: bool,
    on_journal: Callable[[list[tuple[str, ...]]], None] | None,
) -> None:
    """``Store.bulk_load``'s rows, in the transaction it has begun, written in batches.

    Each request gets its row as given, the journal events its ``HistoricalRequest``
    implies and, with a receipt, its input's row. The journal is hash-chained as the
    daemon chains it, in this order: the requests' arrivals, in the order given, then
    the later changes (annullamenti, expiries) in order of time, then of IdOperazione.
    The IdOperazione counter continues after the highest number loaded.

    ``on_journal``, if given, receives the journal's rows in batches as they are
    chained, each as ``Store.iter_journal_rows`` gives it: ``journal.csv``, the journal's
    projection, can then be written in the same pass instead of read back.

    ``journal=False`` loads the requests' rows alone: no journal, no inputs (a store
    only read for its requests, e.g. the CRL benchmark's; ``certdesk verify`` would
    refuse it). ``build_indexes_after`` drops the indexes and builds each once after
    the rows: faster, but a built index is packed full, so that the first requests
    added afterwards split its pages at nearly every insert, which a store grown by
    the daemon does not do. By default the indexes grow with the rows.

    Raises ``ValueError`` if the store has requests or events already."""
    indexes = index_statements()
    if build_indexes_after:
        for name in indexes:
            conn.execute(f"DROP INDEX {name}")
    _write_history(conn, requests, journal=journal, on_journal=on_journal)
    if build_indexes_after:
        for statement in indexes.values():
            conn.execute(statement)


def _write_history(
    conn: sqlite3.Connection,
    requests: Iterable[HistoricalRequest],
    *,
    journal: bool,
    on_journal: Callable[[list[tuple[str, ...]]], None] | None,
) -> None:
    if conn.execute("SELECT 1 FROM requests UNION ALL SELECT 1 FROM events LIMIT 1").fetchone():
        raise ValueError("bulk_load fills a new store; this one has requests already")
    batch = _Batch(conn, on_journal)
    later: list[JournalChange] = []
    last_number = 0
    for r in requests:
        batch.add(r, journal=journal, later=later)
        last_number = max(last_number, int(r.id_operazione.rpartition("-")[2]))
        if len(batch) >= _LOAD_BATCH:
            batch.flush()
    batch.flush()
    # The later changes in order of time (then of IdOperazione), after every arrival.
    later.sort()
    for start in range(0, len(later), _LOAD_BATCH):
        batch.chain(later[start : start + _LOAD_BATCH])
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)",
        (str(last_number + 1),),
    )


class _Batch:
    """The rows of up to ``_LOAD_BATCH`` requests: one statement per table for them all."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        on_journal: Callable[[list[tuple[str, ...]]], None] | None,
    ) -> None:
        self._conn = conn
        self._journal = JournalChain(conn)
        self._on_journal = on_journal
        self._rows: list[tuple[Any, ...]] = []
        self._changes: list[JournalChange] = []
        self._inputs: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, r: HistoricalRequest, *, journal: bool, later: list[JournalChange]) -> None:
        """``r``'s row, its arrival's journal rows and its input's row; its change after
        arrival (annullamento, expiry) goes to ``later``."""
        # Each row is formatted as it comes: the times its maker just formatted (for its
        # receipt) are still in format_utc's cache.
        id_op, origine = r.id_operazione, r.file_origine
        richiesta = format_utc(r.data_richiesta)
        scadenza = format_utc(r.data_scadenza) if r.data_scadenza else None
        annullamento = format_utc(r.data_annullamento) if r.data_annullamento else None
        self._rows.append(
            (id_op, r.codice_fiscale, r.profilo, r.stato.value, richiesta, r.esito,
             origine, r.claim, r.input_sha256, r.spki_sha256, r.csr_der, scadenza,
             r.seriale or None, r.impronta_sha256, r.cert_der, r.motivazione, annullamento,
             r.nota, r.operatore, format_utc(r.ocsp_until) if r.ocsp_until else "")
        )  # fmt: skip
        if not journal:
            return
        for da, a in _ARRIVAL[r.stato]:
            self._changes.append((richiesta, id_op, da, a, "", origine, ""))
        if (change := _later_change(r, scadenza, annullamento)) is not None:
            later.append(change)
        if r.receipt is not None:
            self._inputs.append(
                (r.claim, origine, "richiesta", r.input_sha256, richiesta,
                 _RECEIPT_JSON.encode(r.receipt), int(r.receipt.get("esito") != "OK"))
            )  # fmt: skip

    def flush(self) -> None:
        self._conn.executemany(
            f"INSERT INTO requests ({_LOAD_COLUMNS}) VALUES ({', '.join('?' * 20)})", self._rows
        )
        self.chain(self._changes)
        self._conn.executemany(
            "INSERT INTO inputs (claim, file, tipo, sha256, received, receipt, quarantined,"
            " done) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            self._inputs,
        )
        self._rows.clear()
        self._changes.clear()
        self._inputs.clear()

    def chain(self, changes: Sequence[JournalChange]) -> None:
        """Journal rows onto the chain, and to ``on_journal`` as ``journal.csv`` rows."""
        published: list[tuple[str, ...]] | None = [] if self._on_journal else None
        self._journal.append(changes, published)
        if self._on_journal and published:
            self._on_journal(published)


def _later_change(
    r: HistoricalRequest, scadenza: str | None, annullamento: str | None
) -> JournalChange | None:
    """The change after its arrival that a request ANNULLATO or SCADUTO implies, with the
    times as formatted for its row."""
    if r.stato is Stato.ANNULLATO:
        if annullamento is None:
            raise ValueError(f"{r.id_operazione}: ANNULLATO without a data_annullamento")
        return (annullamento, r.id_operazione, "ATTIVATO", "ANNULLATO", r.motivazione,
                r.file_origine, "")  # fmt: skip
    if r.stato is Stato.SCADUTO:
        if scadenza is None:
            raise ValueError(f"{r.id_operazione}: SCADUTO without a data_scadenza")
        return (scadenza, r.id_operazione, "ATTIVATO", "SCADUTO", "", r.file_origine, "")
    return None
