"""``outbox/journal.csv``: append-only, hash-chained, one row per state change (contract,
section 5). Rows are only ever appended, in the store's event order; a rebuild (``certdesk
republish``) writes the same rows again.

The file's position (the Seq of its last row) is read once from its end and then counted
as rows are appended; a torn final row (a kill during an append) is cut off when it is
read, and appended again whole from the store.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .fsutil import append_durably, first_line, fsync_dir, write_csv_durably
from .outbox import Outbox
from .records import JOURNAL_COLUMNS, csv_line
from .store import Store

__all__ = ["JOURNAL_HEADER", "JournalFile"]

JOURNAL_HEADER = csv_line(JOURNAL_COLUMNS)


class JournalFile:
    """``outbox/journal.csv``, written by one process at a time (the daemon holds its lock)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.path = outbox.journal
        self._seq: int | None = None  # the Seq of the file's last row, once read

    def pending(self, store: Store) -> tuple[str, int]:
        """The text that appends every store event the file does not have yet (with the
        header first if the file has none), and how many rows it holds. Once the text is
        durably appended, :meth:`advance` counts it; if that is not sure, :meth:`forget`."""
        if self._seq is None:
            self._seq = _last_seq(self.path)
        if store.last_event_seq() <= self._seq:
            return "", 0
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        count = 0
        for rows in store.iter_journal_rows(self._seq):
            writer.writerows(rows)
            count += len(rows)
        text = buffer.getvalue()
        if not self.path.exists() or self.path.stat().st_size == 0:
            text = JOURNAL_HEADER + text
        return text, count

    def advance(self, count: int) -> None:
        """``count`` rows of :meth:`pending` are durably in the file."""
        assert self._seq is not None
        self._seq += count

    def forget(self) -> None:
        """Read the position from the file again (an append that may not be durable)."""
        self._seq = None

    def catch_up(self, store: Store) -> int:
        """Append every store event the journal does not have yet; returns how many."""
        text, count = self.pending(store)
        if count:
            append_durably(self.path, text.encode("utf-8"))
            self.advance(count)
        return count

    def has_other_header(self) -> bool:
        """The file starts with another version's header (before ``Canale`` was added):
        its rows are written anew once, with their hashes, which did not change."""
        first = first_line(self.path)
        return bool(first) and first != JOURNAL_HEADER.encode("utf-8")

    def rebuild(self, store: Store) -> None:
        """Write the journal anew from the store's events, then rename it into place."""
        aside = self.outbox.aside(self.path, "rebuild")
        write_csv_durably(aside, JOURNAL_HEADER, store.iter_journal_rows())
        os.replace(aside, self.path)
        fsync_dir(self.outbox.root)
        self.forget()


def _last_seq(path: Path) -> int:
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
    if not last or last == JOURNAL_HEADER.rstrip("\n"):
        return 0
    row = next(csv.reader([last]))
    return int(row[0])
