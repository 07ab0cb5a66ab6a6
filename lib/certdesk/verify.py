"""``certdesk verify-ledger``: the journal's hash chain and the ledger against the store."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from .codes import message
from .errors import LedgerTampered
from .outbox import Outbox
from .records import (
    GENESIS_HASH,
    JOURNAL_COLUMNS,
    LEDGER_COLUMNS,
    chain_hash,
    csv_line,
    journal_hashed,
    journal_line,
    ledger_fields,
    ledger_line,
)
from .states import Stato
from .store import Store

__all__ = ["verify_journal", "verify_ledger"]


def _tampered(case: str, /, *, row: int | None, **facts: object) -> LedgerTampered:
    """REGISTRO_ALTERATO in its ``case``, naming the first bad line as ``row``."""
    return LedgerTampered(message("REGISTRO_ALTERATO", case, **facts), row=row)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        yield from enumerate(csv.reader(fh), start=1)


def verify_journal(path: Path, store: Store) -> int:
    """Check every journal row: chain, sequence, and equality with the store's event.

    Returns the number of rows; raises LedgerTampered naming the first bad line."""
    if not path.exists():
        if store.last_event_seq() == 0:
            return 0
        raise _tampered("mancante", row=None, file=path)
    rows = _rows(path)
    first = next(rows, None)
    if first is None or tuple(first[1]) != JOURNAL_COLUMNS:
        raise _tampered("intestazione", row=1, file=path.name, colonne=",".join(JOURNAL_COLUMNS))
    events = store.iter_events()
    previous = GENESIS_HASH
    count = 0
    for line, row in rows:
        where = {"file": path.name, "riga": line}
        if len(row) != len(JOURNAL_COLUMNS):
            raise _tampered(
                "colonne", row=line, colonne=len(row), attese=len(JOURNAL_COLUMNS), **where
            )
        *fields, digest, canale = row
        if chain_hash(previous, journal_hashed(fields, canale)) != digest:
            raise _tampered("catena", row=line, seq=row[0], **where)
        event = next(events, None)
        if event is None or journal_line(event) != csv_line(row):
            evento = event.seq if event else "(nessuno)"
            raise _tampered("evento", row=line, seq=row[0], evento=evento, **where)
        previous = digest
        count += 1
    missing = next(events, None)
    if missing is not None:
        raise _tampered(
            "righe_mancanti",
            row=count + 2,
            file=path.name,
            riga=count + 2,
            righe=count,
            seq=missing.seq,
        )
    return count


def verify_ledger(path: Path, store: Store) -> int:
    """Check that ledger.csv has one row per settled request, equal to the store's."""
    if not path.exists():
        if next(store.iter_requests(), None) is None:
            return 0
        raise _tampered("mancante", row=None, file=path)
    rows = _rows(path)
    first = next(rows, None)
    if first is None or tuple(first[1]) != LEDGER_COLUMNS:
        raise _tampered("intestazione", row=1, file=path.name, colonne=",".join(LEDGER_COLUMNS))
    records = (r for r in store.iter_requests() if r.stato is not Stato.IN_GENERAZIONE)
    count = 0
    for line, row in rows:
        record = next(records, None)
        expected = ledger_line(record) if record else None
        if expected != csv_line(row):
            where = {"file": path.name, "riga": line, "id_operazione": row[0] if row else "?"}
            if record is None:
                raise _tampered("riga_in_piu", row=line, **where)
            raise _tampered(
                "riga_diversa",
                row=line,
                atteso=record.id_operazione,
                stato=record.stato.value,
                **where,
            )
        count += 1
    extra = next(records, None)
    if extra is not None:
        raise _tampered(
            "riga_assente", row=count + 2, file=path.name, id_operazione=extra.id_operazione
        )
    return count


def verify_channel_ledgers(outbox: Path, store: Store) -> int:
    """Check each named channel's ``outbox/<canale>/ledger.csv``: exactly the channel's
    settled rows, as the store has them (``outbox_channels``). Returns how many rows."""
    total = 0
    named = {c.nome for c in store.channels()} | set(store.channels_with_requests())
    for canale in sorted(named):
        path = Outbox(outbox / canale).ledger
        name = f"{canale}/ledger.csv"
        texts = (t for chunk in store.iter_channel_texts(canale) for t in chunk
                 if t[3] != Stato.IN_GENERAZIONE.value)  # fmt: skip
        expected = (csv_line(ledger_fields(t)) for t in texts)
        if not path.exists():
            raise _tampered("mancante", row=None, file=path)
        rows = _rows(path)
        first = next(rows, None)
        if first is None or tuple(first[1]) != LEDGER_COLUMNS:
            raise _tampered("intestazione", row=1, file=name, colonne=",".join(LEDGER_COLUMNS))
        for line, row in rows:
            wanted = next(expected, None)
            if wanted != csv_line(row):
                raise _tampered("riga_in_piu", row=line, file=name, riga=line,
                                id_operazione=row[0] if row else "?")  # fmt: skip
            total += 1
        if (missing := next(expected, None)) is not None:
            raise _tampered("riga_assente", row=None, file=name,
                            id_operazione=missing.split(",", 1)[0])  # fmt: skip
    return total
