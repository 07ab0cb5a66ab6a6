"""``outbox/ledger.csv``: one row per settled request, its current state (contract, section 5).

Its costs stay independent of the store's size on the hot path:

- a batch's new rows are appended (``Publisher.publish_batch`` does it under the batch's
  durability barrier, with :meth:`LedgerFile.text_of`; :meth:`LedgerFile.append` alone);
- changed rows (an annullamento, an expiry) are patched where they are
  (:meth:`LedgerFile.patch`): the unchanged bytes are copied by the kernel;
- a start-up after a crash appends the rows the crash left out (:meth:`LedgerFile.catch_up`);
- anything else rebuilds the file whole from the store, streamed (:meth:`LedgerFile.rebuild`).

**When is ledger.csv current?** This module is the one that says. The store keeps the
mark (``Transaction.mark_ledger``, ``Store.ledger_is_current``): a change to an existing
row clears it in the change's own transaction, and only :func:`refresh_ledger`, once the
file shows the change, sets it again. :func:`ledger_is_current` reads it: a start-up that
finds it clear (a crash between the two) rebuilds. New rows need no mark: their inputs stay
unfinished until their rows are in. Callers: ``operations.parts.Parts.refresh_ledger``
(every change to existing rows) and ``operations.recovery._catch_up_ledger``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from .fsutil import append_durably, first_line, fsync_dir, write_csv_durably
from .outbox import Outbox
from .records import (
    LEDGER_COLUMNS,
    RequestRecord,
    RequestText,
    csv_line,
    ledger_fields,
    ledger_line,
)
from .store import Store

__all__ = ["LEDGER_HEADER", "LedgerFile", "LedgerWriter", "ledger_is_current", "refresh_ledger"]

LEDGER_HEADER = csv_line(LEDGER_COLUMNS)

# Above this many changed rows at once (a mass expiry), a rebuild is as cheap.
_PATCH_MAX_ROWS = 10_000
# ledger.csv's last row is looked for in this much of its end (a row is ~250 bytes).
_TAIL_BYTES = 64 * 1024
_ID_OPERAZIONE = re.compile(r"\d{8}-\d{9}")


class LedgerRows(Protocol):
    """What a ``LedgerFile`` reads of the store: every row (``Store``), or one channel's
    (``store_channels.ChannelRows``)."""

    def iter_request_texts(self, after: str = "") -> Iterator[list[RequestText]]: ...

    def request_text(self, id_op: str) -> RequestText | None: ...

    def get(self, id_op: str) -> RequestRecord | None: ...


class LedgerWriter(Protocol):
    """What :func:`refresh_ledger` asks of the publisher (``certdesk.publish.Publisher``):
    its rebuild, its update (in place, else a rebuild) and the release of the old file."""

    def rebuild_ledger(self, store: Store) -> None: ...

    def update_ledger(self, store: Store, id_operazioni: Iterable[str]) -> None: ...

    def release_old_ledger(self) -> None: ...


def refresh_ledger(
    publisher: LedgerWriter,
    store: Store,
    changed: Sequence[str] | None = None,
    *,
    release_old: bool = True,
) -> None:
    """Bring ledger.csv up to date (the ``changed`` rows, or all of it), then mark it
    current. Without ``release_old`` the caller frees the replaced file later (after its
    receipts)."""
    if changed is None:
        publisher.rebuild_ledger(store)
    else:
        publisher.update_ledger(store, changed)
    with store.transaction() as txn:
        txn.mark_ledger(current=True)
    if release_old:
        publisher.release_old_ledger()


def ledger_is_current(store: Store, ledger: LedgerFile) -> bool:
    """ledger.csv exists and shows every row as the store has it (see the module's doc)."""
    return store.ledger_is_current() and ledger.path.exists()


class LedgerFile:
    """``outbox/ledger.csv``, written by one process at a time (the daemon holds its lock)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.path = outbox.ledger
        self._old = outbox.aside(self.path, "replaced")

    def text_of(self, records: Iterable[RequestRecord]) -> str:
        """The text that appends ``records``: with the header first if the file has none."""
        text = "".join(ledger_line(r) for r in records)
        if text and (not self.path.exists() or self.path.stat().st_size == 0):
            text = LEDGER_HEADER + text
        return text

    def append(self, records: Iterable[RequestRecord]) -> None:
        text = self.text_of(records)
        if text:
            append_durably(self.path, text.encode("utf-8"))

    def rebuild(self, store: LedgerRows) -> None:
        """Rewrite ledger.csv from the store: streamed, then renamed into place.

        The rows come straight from SQLite as the text the ledger holds (times are stored
        in the ledger's own format), so no record objects are built: a million rows take
        seconds, in constant memory."""
        aside = self.outbox.aside(self.path, "rebuild")
        write_csv_durably(aside, LEDGER_HEADER, _ledger_rows(store.iter_request_texts()))
        self._replace(aside)

    def catch_up(self, store: LedgerRows) -> bool:
        """After a crash, append the rows the store has beyond ledger.csv's last one, in
        constant time instead of a rebuild's (seconds at a million rows).

        A batch appends its rows after its commit, in IdOperazione order, so a crash can
        only leave out the last rows. That holds when the file ends with a whole row equal,
        byte for byte, to the store's row of the same IdOperazione; False otherwise (a
        torn last row, a row the store has otherwise, no header): the caller rebuilds."""
        last_id = self._last_row_id(store)
        if last_id is None:
            return False
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            for rows in _ledger_rows(store.iter_request_texts(after=last_id)):
                writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def patch(self, store: LedgerRows, id_operazioni: Iterable[str]) -> bool:
        """Rewrite the rows of ``id_operazioni`` (an annullamento, an expiry), in constant
        time per row instead of per ledger row; a row not in the file (a batch that failed
        before its append) is inserted where it belongs. False when only a rebuild can do
        it (a torn row, no header, too many rows): the caller rebuilds.

        ledger.csv is a CSV with one row per request, so a row that changes length moves
        every row after it: the file is still written anew, but the unchanged byte ranges
        are copied by the kernel (``copy_file_range``) and only the changed rows are
        formatted. The rows are found by binary search on IdOperazione, which orders the
        file."""
        wanted = sorted(set(id_operazioni))
        if not wanted:
            return True
        if len(wanted) > _PATCH_MAX_ROWS:
            return False
        try:
            spans = self._locate_rows(wanted)
        except (OSError, ValueError):
            return False
        lines = []
        for id_op in wanted:
            record = store.get(id_op)
            if record is None:
                return False
            lines.append(ledger_line(record).encode("utf-8"))
        aside = self.outbox.aside(self.path, "patch")
        try:
            self._write_patched(aside, spans, lines)
        except (OSError, ValueError):
            aside.unlink(missing_ok=True)
            return False
        self._replace(aside)
        return True

    def has_other_header(self) -> bool:
        """The file starts with another version's header (a column added since): it is
        rebuilt whole, once."""
        first = first_line(self.path)
        return bool(first) and first != LEDGER_HEADER.encode("utf-8")

    def release_old(self) -> None:
        """Free the ledger.csv replaced last (a start-up removes one left by a crash)."""
        with contextlib.suppress(FileNotFoundError):
            self._old.unlink()

    def _write_patched(
        self, aside: Path, spans: Sequence[tuple[int, int]], lines: Sequence[bytes]
    ) -> None:
        """Write into ``aside`` the ledger with each span replaced by its line, durably."""
        # Unbuffered target: the kernel copies and our writes share one file offset.
        with open(self.path, "rb") as source, open(aside, "wb", buffering=0) as target:
            position = 0
            for (start, end), line in zip(spans, lines, strict=True):
                _copy_range(source, target, position, start - position)
                _write_all(target.fileno(), line)
                position = end
            size = os.fstat(source.fileno()).st_size
            _copy_range(source, target, position, size - position)
            os.fsync(target.fileno())

    def _replace(self, aside: Path) -> None:
        """Rename ``aside`` over ledger.csv. The replaced file keeps a name until
        ``release_old``: freeing a 250 MB file's blocks takes ~50 ms, which the daemon pays
        after the receipts instead of before them."""
        with contextlib.suppress(FileNotFoundError):
            self._old.unlink()  # one left by a run that stopped before releasing it
        with contextlib.suppress(FileNotFoundError):
            os.link(self.path, self._old)
        os.replace(aside, self.path)
        fsync_dir(self.outbox.root)

    def _last_row_id(self, store: LedgerRows) -> str | None:
        """The IdOperazione of ledger.csv's last row ("" for a header alone), when that row
        is whole and equal to the store's; None when that cannot be shown."""
        try:
            with open(self.path, "rb") as fh:
                if fh.readline() != LEDGER_HEADER.encode("utf-8"):
                    return None
                size = os.fstat(fh.fileno()).st_size
                fh.seek(max(0, size - _TAIL_BYTES))
                tail = fh.read()
        except FileNotFoundError:
            return None
        if not tail.endswith(b"\n"):
            return None  # empty, or a torn last row
        before, _, last = tail[:-1].rpartition(b"\n")
        if not before and size > len(tail):
            return None  # no whole line in the tail: not a row this code writes
        line = last.decode("utf-8", "replace") + "\n"
        if line == LEDGER_HEADER:
            return ""
        id_op = line.split(",", 1)[0]
        text = store.request_text(id_op) if _ID_OPERAZIONE.fullmatch(id_op) else None
        if text is None or _csv_text([ledger_fields(text)]) != line:
            return None
        return id_op

    def _locate_rows(self, wanted: Sequence[str]) -> list[tuple[int, int]]:
        """(start, end) byte offsets of each wanted row; for a row not in the file, the
        empty span where it belongs. Every row is one line (names are made printable)."""
        spans = []
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if fh.readline() != LEDGER_HEADER.encode("utf-8"):
                raise ValueError("ledger.csv does not start with its header")
            first = fh.tell()
            for id_op in wanted:
                key = id_op.encode("ascii")
                lo, hi = first, size
                while lo < hi:  # the first position whose next row has an id >= key
                    mid = (lo + hi) // 2
                    row = _row_from(fh, mid, first, size)
                    if row is None or row[2] >= key:
                        hi = mid
                    else:
                        lo = row[1]
                row = _row_from(fh, lo, first, size)
                if row is not None and row[2] == key:
                    spans.append((row[0], row[1]))
                else:  # before the first row with a greater id, or at the end
                    at = size if row is None else row[0]
                    spans.append((at, at))
        return spans


def _ledger_rows(
    chunks: Iterable[list[RequestText]],
) -> Iterator[list[tuple[str, ...]]]:
    for texts in chunks:
        yield [ledger_fields(t) for t in texts]


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _row_from(fh: Any, position: int, first: int, size: int) -> tuple[int, int, bytes] | None:
    """The first row starting at or after ``position``: (start, end, IdOperazione)."""
    start = position
    if position > first:
        fh.seek(position - 1)
        while True:  # the row containing position - 1 ends at the next newline
            block = fh.read(4096)
            if not block:
                return None
            cut = block.find(b"\n")
            if cut >= 0:
                start = fh.tell() - len(block) + cut + 1
                break
    if start >= size:
        return None
    fh.seek(start)
    line = fh.readline()
    if not line.endswith(b"\n"):
        raise ValueError("ledger.csv ends with a partial row")
    return start, start + len(line), line.split(b",", 1)[0]


def _copy_range(source: Any, target: Any, offset: int, count: int) -> None:
    """Copy ``count`` bytes at ``offset`` of ``source`` to the end of ``target`` (an
    unbuffered file), in the kernel where it can: no trip through Python for hundreds of
    megabytes."""
    src, dst = source.fileno(), target.fileno()
    while count > 0:
        try:
            done = os.copy_file_range(src, dst, count, offset)
        except (AttributeError, OSError):  # not Linux, or a file system that refuses
            source.seek(offset)
            while count > 0:
                block = source.read(min(count, 1 << 20))
                if not block:
                    raise ValueError("ledger.csv shrank while it was copied") from None
                _write_all(dst, block)
                count -= len(block)
            return
        if done == 0:
            raise ValueError("ledger.csv shrank while it was copied")
        offset += done
        count -= done


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
