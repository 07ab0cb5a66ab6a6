"""``certdesk verify-ledger``: the journal's hash chain and the ledger against the store."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from .errors import LedgerTampered
from .records import (
    GENESIS_HASH,
    JOURNAL_COLUMNS,
    LEDGER_COLUMNS,
    chain_hash,
    csv_line,
    journal_line,
    ledger_line,
)
from .states import Stato
from .store import Store

__all__ = ["verify_journal", "verify_ledger"]


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        yield from enumerate(csv.reader(fh), start=1)


def verify_journal(path: Path, store: Store) -> int:
    """Check every journal row: chain, sequence, and equality with the store's event.

    Returns the number of rows; raises LedgerTampered naming the first bad line."""
    if not path.exists():
        if store.last_event_seq() == 0:
            return 0
        raise LedgerTampered(f"{path} is missing", row=None)
    rows = _rows(path)
    first = next(rows, None)
    if first is None or tuple(first[1]) != JOURNAL_COLUMNS:
        raise LedgerTampered(
            f"{path.name} line 1: the header is not {','.join(JOURNAL_COLUMNS)}", row=1
        )
    events = store.iter_events()
    previous = GENESIS_HASH
    count = 0
    for line, row in rows:
        where = f"{path.name} line {line}"
        if len(row) != len(JOURNAL_COLUMNS):
            raise LedgerTampered(
                f"{where}: {len(row)} columns instead of {len(JOURNAL_COLUMNS)}", row=line
            )
        *fields, digest = row
        if chain_hash(previous, fields) != digest:
            raise LedgerTampered(
                f"{where} (Seq {row[0]}): its hash does not chain to the row before it: this "
                "row or the one before was edited, deleted or moved",
                row=line,
            )
        event = next(events, None)
        if event is None or journal_line(event) != csv_line(row):
            raise LedgerTampered(
                f"{where} (Seq {row[0]}): differs from the state store's event "
                f"{event.seq if event else '(none)'}",
                row=line,
            )
        previous = digest
        count += 1
    missing = next(events, None)
    if missing is not None:
        raise LedgerTampered(
            f"{path.name} line {count + 2}: missing; the journal ends after {count} rows but "
            f"the store has event Seq {missing.seq} "
            "and more: rows were deleted from the end (or the daemon is still writing)",
            row=count + 2,
        )
    return count


def verify_ledger(path: Path, store: Store) -> int:
    """Check that ledger.csv has one row per settled request, equal to the store's."""
    if not path.exists():
        if next(store.iter_requests(), None) is None:
            return 0
        raise LedgerTampered(f"{path} is missing", row=None)
    rows = _rows(path)
    first = next(rows, None)
    if first is None or tuple(first[1]) != LEDGER_COLUMNS:
        raise LedgerTampered(f"{path.name} line 1: the header is not the contract's columns", row=1)
    records = (r for r in store.iter_requests() if r.stato is not Stato.IN_GENERAZIONE)
    count = 0
    for line, row in rows:
        record = next(records, None)
        expected = ledger_line(record) if record else None
        if expected != csv_line(row):
            name = row[0] if row else "?"
            raise LedgerTampered(
                f"{path.name} line {line} (IdOperazione {name}): differs from the state store"
                + (f" (expected {record.id_operazione} {record.stato.value})" if record else ""),
                row=line,
            )
        count += 1
    extra = next(records, None)
    if extra is not None:
        raise LedgerTampered(
            f"{path.name} has no row for IdOperazione {extra.id_operazione}", row=count + 2
        )
    return count
