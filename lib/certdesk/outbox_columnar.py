"""``outbox/ledger.parquet/``: the ledger as Apache Parquet, for analysts and the panels.

``ledger.csv`` stays what programs read; this copy is what a query engine reads (the
panels' DuckDB, ``certdesk.frame.load_ledger``, an analyst's ``pd.read_parquet``). It has
the same rows and columns, typed: text (empty cells are nulls), ``Stato`` and
``Motivazione`` dictionary-encoded, the three dates UTC timestamps.

**Parts.** The rows, in IdOperazione order, are cut into parts of :data:`ROWS_PER_PART`
rows, one file each, named by its first IdOperazione (``20261201-000000001.parquet``).
New requests only ever take IdOperazioni above every other, so they land in the last
part, and a new part starts when it is full: a change rewrites one part (tens of
milliseconds), never the whole history. An IdOperazione below the first part's name (a
clock set back) belongs to the first part.

**When is it current?** Every change of a row is a journal event in the store, so the
copy records the last event it shows (``_certdesk.json``, written after its parts) and
:meth:`ColumnarLedger.catch_up` rewrites the parts of the rows changed by later events.
A crash between a part and the record only makes the next catch-up rewrite that part
again. The daemon catches up after every change to existing rows (before the receipts,
as for ledger.csv), whenever it has nothing to do, and every few seconds during a
backlog; a start-up catches up what a crash left out, and ``certdesk republish``
rebuilds the copy whole.

Every file is written aside and renamed; readers that list the folder ignore names
starting with ``.`` or ``_`` (pyarrow's default; DuckDB's glob is ``*.parquet``).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .fsutil import atomic_write, fsync_dir
from .outbox import Outbox
from .records import LEDGER_COLUMNS, RequestText, ledger_fields
from .store import Store

__all__ = ["ROWS_PER_PART", "ColumnarLedger", "part_paths"]

#: Rows per part: a part is rewritten whole when one of its rows changes.
ROWS_PER_PART = 8192

# The parts' layout; a copy of another is rebuilt at start. 2: with ``Canale`` (issue 18).
FORMAT = 2
_MANIFEST = "_certdesk.json"
_SUFFIX = ".parquet"


def part_paths(folder: Path) -> list[Path]:
    """The parts in ``folder``, oldest first (their names are their first IdOperazioni);
    none when there is no such folder."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    parts = sorted(n for n in names if n.endswith(_SUFFIX) and n[0] not in "._")
    return [folder / name for name in parts]


class ColumnarLedger:
    """The copy under ``outbox/ledger.parquet/``; one writer at a time (the daemon's lock)."""

    def __init__(self, outbox: Outbox, rows_per_part: int = ROWS_PER_PART) -> None:
        self.folder = outbox.columnar_ledger
        self.rows_per_part = rows_per_part
        self._manifest = self.folder / _MANIFEST
        self._seq: int | None = None  # the last event shown, once read or written
        # The last part's name and rows, as last written: new rows are appended to it
        # without reading the part's rows again from the store (whose text columns lie
        # after the certificates, so a re-read costs megabytes for a few new rows).
        self._tail: tuple[str, list[tuple[str, ...]]] | None = None

    # -- what it shows ----------------------------------------------------------------
    def shown_seq(self) -> int | None:
        """The last journal event the copy shows; None when it has no (readable) record."""
        if self._seq is None:
            try:
                manifest = json.loads(self._manifest.read_text(encoding="utf-8"))
                if manifest.get("formato") == FORMAT and manifest.get(
                    "righe_per_parte"
                ) == self.rows_per_part:
                    self._seq = int(manifest["seq"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return self._seq

    def prepare(self) -> None:
        """Load the Parquet writer now (the daemon calls this when it is idle)."""
        _warm_up()

    def is_current(self, store: Store) -> bool:
        return self.shown_seq() == store.last_event_seq()

    def part_names(self) -> list[str]:
        """The parts' first IdOperazioni, in order."""
        return [path.name[: -len(_SUFFIX)] for path in part_paths(self.folder)]

    # -- keeping it --------------------------------------------------------------------
    def catch_up(self, store: Store) -> int:
        """Rewrite the parts whose rows changed since the copy's record (everything, when
        it has none, or records more than the store has); the rows written."""
        target = store.last_event_seq()
        shown = self.shown_seq()
        if shown is None or shown > target:
            return self.rebuild(store)
        if shown == target:
            return 0
        written = self._rewrite(store, store.ids_changed_since(shown))
        self._record(target)
        return written

    def rebuild(self, store: Store) -> int:
        """Write the whole copy anew from the store; parts it no longer has are removed."""
        target = store.last_event_seq()
        self.folder.mkdir(parents=True, exist_ok=True)
        old = set(self.part_names())
        self._invalidate()
        written, new = self._write_parts(
            _cut(store.iter_request_texts_between("", None), self.rows_per_part), None)
        for name in old - set(new):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / f"{name}{_SUFFIX}").unlink()
        fsync_dir(self.folder)
        self._record(target)
        if written:
            from .ledger_arrow import release_memory

            release_memory()
        return written

    def _rewrite(self, store: Store, changed: Sequence[str]) -> int:
        """Rewrite the parts holding ``changed`` (sorted IdOperazioni)."""
        names = self.part_names()
        if not names:
            written, _new = self._write_parts(
                _cut(store.iter_request_texts_between("", None), self.rows_per_part), None)
            fsync_dir(self.folder)
            return written
        touched = sorted({max(0, bisect.bisect_right(names, id_op) - 1) for id_op in changed})
        written = 0
        for index in touched:
            if index == len(names) - 1:
                continue  # the last part, with the new rows after it: below
            low = "" if index == 0 else names[index]
            rows = _rows(store.iter_request_texts_between(low, names[index + 1]))
            self._write_part(names[index], rows)
            written += len(rows)
        if touched and touched[-1] == len(names) - 1:
            tail = [id_op for id_op in changed if len(names) == 1 or id_op >= names[-1]]
            rows = self._tail_rows(store, names, tail)
            more, _new = self._write_parts(
                (rows[i:i + self.rows_per_part] for i in range(0, len(rows), self.rows_per_part)),
                names[-1])
            written += more
        fsync_dir(self.folder)
        return written

    def _tail_rows(
        self, store: Store, names: Sequence[str], changed: Sequence[str]
    ) -> list[tuple[str, ...]]:
        """The last part's rows as the store has them now, new rows included: from the
        rows last written where they are known (only changed and new rows are read)."""
        low = "" if len(names) == 1 else names[-1]
        if self._tail is None or self._tail[0] != names[-1]:
            return _rows(store.iter_request_texts_between(low, None))
        rows = self._tail[1]
        at = {row[0]: i for i, row in enumerate(rows)}
        last = rows[-1][0] if rows else low
        for id_op in changed:
            if id_op in at:
                text = store.request_text(id_op)
                if text is None:
                    return _rows(store.iter_request_texts_between(low, None))
                rows[at[id_op]] = ledger_fields(text)
            elif id_op <= last:  # a row that was not there, below the last: read again
                return _rows(store.iter_request_texts_between(low, None))
        rows.extend(_rows(store.iter_request_texts_between(last + "\x00", None)))
        return rows

    def _write_parts(
        self, parts: Iterable[Sequence[tuple[str, ...]]], first_name: str | None
    ) -> tuple[int, list[str]]:
        """Write ``parts`` in order; the first is named ``first_name`` (an existing part),
        the others by their first row. The last one is kept as the tail."""
        written, names = 0, list[str]()
        for part in parts:
            name = first_name if first_name is not None and not names else part[0][0]
            self._write_part(name, part)
            names.append(name)
            written += len(part)
            self._tail = (name, list(part))
        return written, names

    def _write_part(self, name: str, rows: Sequence[Sequence[str]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{name}{_SUFFIX}"
        aside = Outbox.aside(target, "write")
        from .ledger_arrow import write_part  # pyarrow, once the first part is written

        write_part(rows, aside)  # with the daemon's umask, as ledger.csv (0640 under 0027)
        os.replace(aside, target)

    def _invalidate(self) -> None:
        self._seq = None
        self._tail = None
        with contextlib.suppress(FileNotFoundError):
            self._manifest.unlink()

    def _record(self, seq: int) -> None:
        manifest = {"formato": FORMAT, "seq": seq, "righe_per_parte": self.rows_per_part}
        atomic_write(self._manifest, json.dumps(manifest).encode("utf-8"))
        self._seq = seq


@functools.cache
def _warm_up() -> None:
    """pyarrow and what it reads a table with (megabytes of files), loaded once the daemon
    is idle (``prepare``), not in the middle of a request."""
    from .ledger_arrow import ledger_table

    ledger_table([("20000101-000000000", *[""] * (len(LEDGER_COLUMNS) - 1))])


def _rows(chunks: Iterable[list[RequestText]]) -> list[tuple[str, ...]]:
    return [ledger_fields(text) for chunk in chunks for text in chunk]


def _cut(chunks: Iterable[list[RequestText]], size: int) -> Iterator[list[tuple[str, ...]]]:
    """The ledger rows of ``chunks`` in lists of ``size`` (the last one shorter)."""
    part: list[tuple[str, ...]] = []
    for chunk in chunks:
        for text in chunk:
            part.append(ledger_fields(text))
            if len(part) == size:
                yield part
                part = []
    if part:
        yield part

