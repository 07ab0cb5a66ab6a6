"""The outbox: a projection of the state store, every file appearing atomically.

Costs stay independent of the store's size on the hot path: certificates and receipts
are single files, new ledger rows and journal rows are appended. Only a change to an
existing row (annullamento, expiry) rewrites ``ledger.csv``, streamed from the store.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .fsutil import append_durably, atomic_write, fsync_dir
from .home import Home
from .names import safe_name
from .records import (
    JOURNAL_COLUMNS,
    LEDGER_COLUMNS,
    RequestRecord,
    csv_line,
    journal_line,
    ledger_line,
)
from .store import Store

__all__ = ["Publisher"]

_LEDGER_HEADER = csv_line(LEDGER_COLUMNS)
_JOURNAL_HEADER = csv_line(JOURNAL_COLUMNS)


def _journal_last_seq(path: Path) -> int:
    """The Seq of the journal's last complete row; a torn final append is cut off."""
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        start = max(0, size - 8192)
        fh.seek(start)
        tail = fh.read()
        if not tail.endswith(b"\n"):
            # A kill during an append leaves part of a row: the store still has the
            # event, so drop the fragment and append it again whole.
            cut = start + tail.rfind(b"\n") + 1
            fh.truncate(cut)
            os.fsync(fh.fileno())
            tail = tail[: cut - start]
        lines = tail.rstrip(b"\n").split(b"\n")
        last = lines[-1].decode("utf-8") if lines and lines[-1] else ""
    if not last or last == _JOURNAL_HEADER.rstrip("\n"):
        return 0
    row = next(csv.reader([last]))
    return int(row[0])


class Publisher:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.outbox = home.outbox
        self.certs = self.outbox / "certs"
        self.receipts = self.outbox / "receipts"
        self.ca = self.outbox / "ca"
        self.ocsp = self.outbox / "ocsp"
        self.ledger = self.outbox / "ledger.csv"
        self.journal = self.outbox / "journal.csv"
        self._journal_seq: int | None = None

    def ensure_layout(self) -> None:
        for folder in (self.outbox, self.certs, self.receipts, self.ca, self.ocsp):
            folder.mkdir(parents=True, exist_ok=True)

    # -- single files ----------------------------------------------------------------
    def certificate_path(self, id_operazione: str) -> Path:
        return self.certs / f"{id_operazione}.pem"

    def write_certificate(self, id_operazione: str, pem: bytes, *, sync: bool = True) -> None:
        atomic_write(self.certificate_path(id_operazione), pem, sync_dir=sync)

    def receipt_path(self, input_name: str) -> Path:
        return self.receipts / f"{safe_name(input_name)}.json"

    def write_receipt(self, input_name: str, receipt: dict[str, Any], *, sync: bool = True) -> None:
        data = json.dumps(receipt, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
        atomic_write(self.receipt_path(input_name), data.encode("utf-8"), sync_dir=sync)

    def write_ca(self, root_pem: bytes, issuing_pem: bytes) -> None:
        atomic_write(self.ca / "root.pem", root_pem)
        atomic_write(self.ca / "issuing.pem", issuing_pem)
        atomic_write(self.ca / "chain.pem", issuing_pem + root_pem)

    def sync_folders(self) -> None:
        for folder in (self.certs, self.receipts, self.outbox):
            fsync_dir(folder)

    # -- ledger ----------------------------------------------------------------------
    def append_ledger(self, records: Iterable[RequestRecord]) -> None:
        text = "".join(ledger_line(r) for r in records)
        if not text:
            return
        if not self.ledger.exists():
            text = _LEDGER_HEADER + text
        append_durably(self.ledger, text.encode("utf-8"))

    def rebuild_ledger(self, store: Store) -> None:
        """Rewrite ledger.csv from the store: streamed, then renamed into place."""
        aside = self.ledger.with_name(".ledger.csv.rebuild.tmp")
        with open(aside, "w", encoding="utf-8", newline="") as fh:
            fh.write(_LEDGER_HEADER)
            batch: list[str] = []
            for record in store.iter_requests():
                batch.append(ledger_line(record))
                if len(batch) >= 10_000:
                    fh.write("".join(batch))
                    batch.clear()
            fh.write("".join(batch))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(aside, self.ledger)
        fsync_dir(self.outbox)

    # -- journal ---------------------------------------------------------------------
    def catch_up_journal(self, store: Store) -> int:
        """Append every store event the journal does not have yet; returns how many."""
        if self._journal_seq is None:
            self._journal_seq = _journal_last_seq(self.journal)
        if store.last_event_seq() <= self._journal_seq:
            return 0
        lines = [journal_line(e) for e in store.iter_events(self._journal_seq)]
        text = "".join(lines)
        if not self.journal.exists() or self.journal.stat().st_size == 0:
            text = _JOURNAL_HEADER + text
        append_durably(self.journal, text.encode("utf-8"))
        self._journal_seq += len(lines)
        return len(lines)

    def rebuild_journal(self, store: Store) -> None:
        aside = self.journal.with_name(".journal.csv.rebuild.tmp")
        with open(aside, "w", encoding="utf-8", newline="") as fh:
            fh.write(_JOURNAL_HEADER)
            for event in store.iter_events():
                fh.write(journal_line(event))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(aside, self.journal)
        fsync_dir(self.outbox)
        self._journal_seq = None
