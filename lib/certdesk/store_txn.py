"""The store's writes: ``Transaction``, every state change with its journal event.

Part of the store (``store.py``, whose docstring lists these methods): a ``Transaction``
comes only from ``Store.transaction()``, which commits it whole or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .clock import format_utc
from .codes import refusal
from .issuers import IssuerEntry
from .publication import FIRST_ISSUER
from .states import Stato, check_transition
from .store_inputs import OriginalRecord
from .store_journal import JournalChain
from .store_rows import Activation, NewRequest

__all__ = ["Transaction"]


class Transaction:
    """One write transaction (``BEGIN IMMEDIATE``): either all of it lands, or none."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._journal = JournalChain(conn)
        self._next_id: int | None = None  # the IdOperazione counter, written before COMMIT
        self._last_day = ""  # the day of the greatest IdOperazione, once read
        self._id_dirty = False

    # -- journal ---------------------------------------------------------------------
    def _append_event(self, now: datetime, id_op: str, da: Stato | None, a: Stato,
                      motivazione: str, origine: str, canale: str) -> None:  # fmt: skip
        self._append_events(now, [(id_op, da, a, motivazione, origine, canale)])

    def _append_events(
        self, now: datetime, changes: Sequence[tuple[str, Stato | None, Stato, str, str, str]]
    ) -> None:
        """Journal rows for (id, from, to, motivazione, file, canale) changes, chained in
        order."""
        data = format_utc(now)
        self._journal.append(
            [
                (data, id_op, da.value if da else "", a.value, motivazione, origine, canale)
                for id_op, da, a, motivazione, origine, canale in changes
            ]
        )

    # -- requests --------------------------------------------------------------------
    def allocate_id(self, now: datetime) -> str:
        """Time-ordered, unique, file-name safe (``record_requests`` takes it ready-made);
        the counter commits with the request, so a crash can never hand the same
        IdOperazione out twice."""
        if self._next_id is None:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
            self._next_id = int(row[0]) if row else 1
            last = self._conn.execute("SELECT MAX(id_operazione) FROM requests").fetchone()
            self._last_day = (last[0] or "")[:8]
        number = self._next_id
        self._next_id += 1
        self._id_dirty = True
        # A clock set back never gives an IdOperazione below an earlier one: the ledger's
        # files are kept in IdOperazione order, and new rows go at their end.
        self._last_day = max(f"{now:%Y%m%d}", self._last_day)
        return f"{self._last_day}-{number:09d}"

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
        canale: str = "",
    ) -> str:
        check_transition(None, stato)
        id_op = self.allocate_id(now)
        self._conn.execute(
            "INSERT INTO requests (id_operazione, codice_fiscale, profilo, stato, data_richiesta,"
            " esito, file_origine, claim, input_sha256, spki_sha256, csr_der, canale)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                canale,
            ),
        )
        self._append_event(now, id_op, None, stato, "", file_origine, canale)
        return id_op

    def record_requests(self, now: datetime, requests: Sequence[NewRequest]) -> None:
        """``record_new`` for a batch: one statement per table for all of them."""
        for request in requests:
            check_transition(None, request.stato)
        data = format_utc(now)
        self._conn.executemany(
            "INSERT INTO requests (id_operazione, codice_fiscale, profilo, stato, data_richiesta,"
            " esito, file_origine, claim, input_sha256, spki_sha256, csr_der, seriale,"
            " data_scadenza, emittente, canale)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    r.emittente or FIRST_ISSUER,
                    r.canale,
                )
                for r in requests
            ],
        )
        self._append_events(
            now,
            [(r.id_operazione, None, r.stato, "", r.file_origine, r.canale) for r in requests],
        )

    def reserve_serials(self, reservations: Sequence[tuple[str, str, datetime]]) -> None:
        """(id, serial, not after) for requests IN_GENERAZIONE recorded without a serial
        (by an older version): every signature has its serial in the store first."""
        self._conn.executemany(
            "UPDATE requests SET seriale = ?, data_scadenza = ?"
            " WHERE id_operazione = ? AND stato = 'IN_GENERAZIONE' AND seriale IS NULL",
            [(serial, format_utc(until), id_op) for id_op, serial, until in reservations],
        )

    def forget_reservations(self) -> int:
        """A restored store: the serials reserved for requests still IN_GENERAZIONE are
        dropped, so each is signed with a new one (the lost machine may have signed and
        published a certificate with the old one); returns how many."""
        cursor = self._conn.execute(
            "UPDATE requests SET seriale = NULL"
            " WHERE stato = 'IN_GENERAZIONE' AND seriale IS NOT NULL"
        )
        return cursor.rowcount

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
                (a.id_op, Stato.IN_GENERAZIONE, Stato.ATTIVATO, "", a.file_origine, a.canale)
                for a in activations
            ],
        )

    def _current(self, id_op: str) -> tuple[Stato, str, str]:
        """A request's state, file and channel, as its next journal row needs them."""
        row = self._conn.execute(
            "SELECT stato, file_origine, canale FROM requests WHERE id_operazione = ?", (id_op,)
        ).fetchone()
        if row is None:
            raise refusal("ID_OPERAZIONE_SCONOSCIUTO", id_operazione=id_op)
        return Stato(row[0]), row[1], row[2]

    def fail(self, id_op: str, *, now: datetime, esito: str) -> None:
        current, origine, canale = self._current(id_op)
        check_transition(current, Stato.RIFIUTATO, id_op)
        # No certificate carries the serial reserved for it: the ledger shows none.
        self._conn.execute(
            "UPDATE requests SET stato = ?, esito = ?, seriale = NULL, data_scadenza = NULL"
            " WHERE id_operazione = ?",
            (Stato.RIFIUTATO.value, esito, id_op),
        )
        self._append_event(now, id_op, current, Stato.RIFIUTATO, "", origine, canale)

    def cancel(
        self, id_op: str, *, now: datetime, motivazione: str, nota: str, operatore: str
    ) -> None:
        current, origine, canale = self._current(id_op)
        check_transition(current, Stato.ANNULLATO, id_op)
        self._conn.execute(
            "UPDATE requests SET stato = ?, motivazione = ?, data_annullamento = ?, nota = ?,"
            " operatore = ?, ocsp_until = '' WHERE id_operazione = ?",
            (Stato.ANNULLATO.value, motivazione, format_utc(now), nota, operatore, id_op),
        )
        self._append_event(now, id_op, current, Stato.ANNULLATO, motivazione, origine, canale)
        self.mark_ledger(current=False)

    def expire(self, id_op: str, *, now: datetime) -> None:
        current, origine, canale = self._current(id_op)
        check_transition(current, Stato.SCADUTO, id_op)
        self._conn.execute(
            "UPDATE requests SET stato = ? WHERE id_operazione = ?", (Stato.SCADUTO.value, id_op)
        )
        self._append_event(now, id_op, current, Stato.SCADUTO, "", origine, canale)
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

    # -- originals (archive.py) ------------------------------------------------------
    def record_originals(self, originals: Sequence[OriginalRecord]) -> None:
        """Where each original was appended; only once its bytes are durable. A second
        row for one input is an IntegrityError: never two records of one original."""
        self._conn.executemany(
            "INSERT INTO originals (claim, pack, start, size, sha256) VALUES (?, ?, ?, ?, ?)",
            [(o.claim, o.pack, o.start, o.size, o.sha256) for o in originals],
        )

    def mark_pruned(self, pack: str, now: datetime) -> int:
        """Every original of ``pack`` deleted by retention (before the file goes)."""
        cursor = self._conn.execute(
            "UPDATE originals SET pruned = ? WHERE pack = ? AND pruned IS NULL",
            (format_utc(now), pack),
        )
        return cursor.rowcount

    def record_pruned_folders(self, claims: Sequence[tuple[str, str]], now: datetime) -> None:
        """(claim, sha256) of originals kept as folders, deleted by retention."""
        self._conn.executemany(
            "INSERT OR REPLACE INTO originals (claim, pack, start, size, sha256, pruned)"
            " VALUES (?, '', 0, 0, ?, ?)",
            [(claim, sha, format_utc(now)) for claim, sha in claims],
        )

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

    def add_issuer(self, entry: IssuerEntry, now: datetime) -> None:
        """A new issuing CA (``certdesk rollover``), whose files are in ``state/ca/``
        already: from this commit on, the daemon signs with it from ``active_from``."""
        self._conn.execute(
            "INSERT INTO emittenti (nome, generazione, attivo_dal, creato) VALUES (?, ?, ?, ?)",
            (entry.name, entry.generation, format_utc(entry.active_from), format_utc(now)),
        )

    def add_channel(self, nome: str, gruppo: str, now: datetime) -> None:
        """A channel made by ``certdesk canale add`` (its folders are made already)."""
        self._conn.execute(
            "INSERT INTO canali (nome, gruppo, creato) VALUES (?, ?, ?)",
            (nome, gruppo, format_utc(now)),
        )

    def retire_channel(self, nome: str, now: datetime) -> None:
        self._conn.execute(
            "UPDATE canali SET ritirato = ? WHERE nome = ? AND ritirato IS NULL",
            (format_utc(now), nome),
        )

    def raise_crl_number(self, floor: int) -> int:
        """The CRL counter moved up to ``floor``, never down (a restore: see
        ``restore.crl_number_floor``); the next CRL is numbered above it. Returns it."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'crl_number'").fetchone()
        number = max(int(row[0]) if row else 0, floor)
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('crl_number', ?)", (str(number),)
        )
        return number

    def next_crl_number(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'crl_number'").fetchone()
        number = int(row[0]) + 1 if row else 1
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('crl_number', ?)", (str(number),)
        )
        return number
