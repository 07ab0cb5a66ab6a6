"""Questions to the ledger, answered by DuckDB over ``outbox/ledger.parquet/``.

The panels and :func:`certdesk.frame.load_ledger` ask for counts, a few aggregates, one
page of rows or one person's rows: DuckDB reads only the columns a question names, skips
the parts whose statistics exclude it, and hands back a handful of rows, so each answer
costs milliseconds to tens of milliseconds at a million requests instead of a pandas frame
of the whole history in every kernel (measured beside pyarrow's dataset API in
``docs/benchmarks.md``, which is why DuckDB). Where the daemon has not written the
columnar copy yet (an older certdesk), the same questions are asked of ``ledger.csv``.

    >>> q = LedgerQuery(home)
    >>> q.count(LedgerFilter(stati=("ANNULLATO",)))
    >>> q.page(LedgerFilter(contains="RSS"), offset=0, limit=50)      # a typed DataFrame

Every value from a person reaches SQL as a bound parameter, never as SQL text.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from .codes import refusal
from .errors import CertdeskError
from .ledger_filter import LedgerFilter, day_bounds
from .outbox import Outbox
from .outbox_columnar import part_paths
from .records import LEDGER_COLUMNS

__all__ = ["LedgerFilter", "LedgerQuery", "columnar_copy_exists", "day_bounds", "interrupt_all"]

_TEXT_TYPES = {
    "DataRichiesta": "TIMESTAMPTZ",
    "DataScadenza": "TIMESTAMPTZ",
    "DataAnnullamento": "TIMESTAMPTZ",
}
_COLUMNS_SQL = ", ".join(f'"{name}"' for name in LEDGER_COLUMNS)
_ACTIVE_FROM = "Stato = 'ATTIVATO' AND starts_with(CodiceFiscale, ?)"
# The newest parts, where the first pages' rows are looked for first (a part holds 8,192
# rows; the last one may have just begun).
_PROBED_PARTS = 2
# The table's and the exports' order: the newest request first.
_NEWEST_FIRST = "DataRichiesta DESC NULLS LAST, IdOperazione DESC"
_OLDEST_FIRST = "DataRichiesta ASC NULLS FIRST, IdOperazione ASC"


def columnar_copy_exists(home: str | os.PathLike[str]) -> bool:
    """The daemon has written ``outbox/ledger.parquet/`` (its record and a part)."""
    folder = Outbox.of(home).columnar_ledger
    try:
        names = [entry.name for entry in folder.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return False
    return "_certdesk.json" in names and any(
        n.endswith(".parquet") and not n.startswith((".", "_")) for n in names
    )


class LedgerQuery:
    """One DuckDB connection over one home's ledger. Safe to share between a panel's
    threads: a question holds the connection for its few milliseconds."""

    def __init__(
        self, home: str | os.PathLike[str], *, memory_limit: str = "128MB", threads: int = 2
    ) -> None:
        self.outbox = Outbox.of(home)
        self._lock = threading.Lock()
        # A kernel's share of memory is bounded (issue 15: 300 MB a page); a deep page's
        # sort may spill, to a private folder that goes with the connection.
        self._spill: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="certdesk-duckdb-")
        self._con = duckdb.connect(config={
            "memory_limit": memory_limit, "threads": threads,
            "temp_directory": self._spill.name, "preserve_insertion_order": True})
        self._con.execute("SET TimeZone = 'UTC'")
        # Every question opens each part's footer: kept in memory instead, for a part
        # unchanged for more than 10 s (DuckDB's rule: a part the daemon has just rewritten
        # is read again, whatever its modification time's resolution).
        self._con.execute("SET parquet_metadata_cache = true")
        self._cursors: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
        _open.add(self)
        self.source = ""
        try:
            self.refresh()
        except CertdeskError:
            self._empty_view()  # asked again by the caller's own refresh, which raises

    def sibling(self) -> LedgerQuery:
        """Another connection to the same ledger (same view, same memory bound), with a
        lock of its own: a background thread's questions (the charts) never make a
        person's filter wait for them."""
        twin = object.__new__(LedgerQuery)
        twin.outbox, twin.source = self.outbox, self.source
        twin._lock = threading.Lock()
        twin._spill = None
        with self._lock:
            twin._con = self._con.cursor()
        twin._con.execute("SET TimeZone = 'UTC'")
        twin._cursors = weakref.WeakSet()
        _open.add(twin)
        return twin

    def close(self) -> None:
        self._con.close()
        if self._spill is not None:
            self._spill.cleanup()

    def interrupt(self) -> None:
        """Stop the queries running on this connection and its cursors (they raise)."""
        for connection in [self._con, *self._cursors]:
            with contextlib.suppress(duckdb.Error):  # closed already
                connection.interrupt()

    def refresh(self) -> str:
        """Point the questions at the columnar copy, else ledger.csv, else nothing (an
        empty ledger); which one, as ``parquet``, ``csv`` or ``vuoto``."""
        if columnar_copy_exists(self.outbox.root.parent):
            glob = self.outbox.columnar_parts_glob
            body = f"SELECT {_COLUMNS_SQL} FROM read_parquet({_literal(glob)})"
            self.source = "parquet"
        elif self.outbox.ledger.is_file() and self.outbox.ledger.stat().st_size > 0:
            types = ", ".join(
                f"{_literal(n)}: '{_TEXT_TYPES.get(n, 'VARCHAR')}'" for n in LEDGER_COLUMNS
            )
            body = (f"SELECT {_COLUMNS_SQL} FROM read_csv({_literal(str(self.outbox.ledger))},"
                    f" header = true, columns = {{{types}}}, quote = '\"', escape = '\"')")
            self.source = "csv"
        else:
            return self._empty_view()
        try:
            self._define(body)
        except duckdb.Error as exc:
            raise refusal("REGISTRO_NON_LEGGIBILE", file=self.outbox.ledger,
                          errore=str(exc).splitlines()[0]) from exc
        return self.source

    def _empty_view(self) -> str:
        nulls = ", ".join(
            f"NULL::{_TEXT_TYPES.get(n, 'VARCHAR')} AS \"{n}\"" for n in LEDGER_COLUMNS
        )
        self._define(f"SELECT {nulls} WHERE FALSE")
        self.source = "vuoto"
        return self.source

    def _define(self, body: str) -> None:
        with self._lock:
            # not TEMP: an export's own cursor (another connection) sees it too
            self._con.execute(f"CREATE OR REPLACE VIEW ledger AS {body}")

    # -- questions --------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    def table(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        with self._lock:
            return self._con.sql(sql, params=list(params)).to_arrow_table()

    def count(self, which: LedgerFilter) -> int:
        where, params = which.where()
        return int(self.rows(f"SELECT count(*) FROM ledger WHERE {where}", params)[0][0])

    def counts_by_state(self, which: LedgerFilter) -> dict[str, int]:
        where, params = which.where()
        found = self.rows(f"SELECT Stato, count(*) FROM ledger WHERE {where} GROUP BY 1", params)
        return {str(stato): int(n) for stato, n in found}

    def expiring_count(self, which: LedgerFilter, now: datetime, days: int) -> int:
        where, params = which.where()
        return int(self.rows(
            f"SELECT count(*) FROM ledger WHERE {where} AND Stato = 'ATTIVATO'"
            " AND DataScadenza >= ? AND DataScadenza <= ?",
            [*params, now, now + timedelta(days=days)],
        )[0][0])

    def per_month(self, which: LedgerFilter, column: str, extra: str = "TRUE",
                  extra_params: Sequence[object] = ()) -> list[tuple[date, int]]:
        """Rows per month of ``column`` in Italian time (months without rows left out)."""
        where, params = which.where()
        found = self.rows(
            f"SELECT date_trunc('month', timezone('Europe/Rome', \"{column}\")) AS m, count(*)"
            f" FROM ledger WHERE {where} AND {extra} AND \"{column}\" IS NOT NULL"
            " GROUP BY 1 ORDER BY 1",
            [*params, *extra_params],
        )
        return [(_as_date(m), int(n)) for m, n in found]

    def by_reason(self, which: LedgerFilter) -> dict[str, int]:
        where, params = which.where()
        found = self.rows(
            f"SELECT Motivazione, count(*) FROM ledger WHERE {where} AND Stato = 'ANNULLATO'"
            " GROUP BY 1", params)
        return {str(m): int(n) for m, n in found if m is not None}

    def page(
        self, which: LedgerFilter, *, offset: int, limit: int, total: int | None = None
    ) -> pa.Table:
        """The rows ``offset`` to ``offset + limit`` of the match, newest first.

        The ids are found first, from two columns; only then are their whole rows read,
        from the one or two parts that hold them (IdOperazione is time-ordered): a deep
        page of a million rows in a tenth of the time of sorting whole rows. Given the
        match's ``total``, a page in its older half is counted from the oldest row, so the
        last page costs what the first does (a top-N, never a sort of every row)."""
        where, params = which.where()
        offset = max(0, offset)
        if total is not None and offset > total // 2:
            skip = max(0, total - offset - limit)
            ids = [r[0] for r in self.rows(
                f"SELECT IdOperazione FROM ledger WHERE {where} ORDER BY {_OLDEST_FIRST}"
                " LIMIT ? OFFSET ?", [*params, min(limit, total - offset), skip])]
        else:
            ids = self._newest_ids(where, params, offset, limit)
        if not ids:
            return self.empty()
        low, high = min(ids), max(ids)  # a range the parts' statistics can prune by
        return self.table(
            f"SELECT {_COLUMNS_SQL} FROM ledger WHERE IdOperazione BETWEEN ? AND ?"
            f" AND IdOperazione IN ({', '.join('?' for _ in ids)})"
            f" ORDER BY {_NEWEST_FIRST}", [low, high, *ids])

    def _newest_ids(self, where: str, params: list[object], offset: int, limit: int
                    ) -> list[str]:
        """The ids of rows ``offset`` to ``offset + limit``, newest first.

        A near page is looked for among the requests since a moment found in the newest
        parts alone (:meth:`_newest_floor`): DuckDB then skips every older part by its
        statistics instead of reading a million dates. Whenever fewer than ``limit`` rows
        come back, the bound may have cut the page short (the match ends, or the parts
        changed between the two questions): it is asked again without the bound, so the
        answer is always the unbounded one's."""
        sql = (f"SELECT IdOperazione FROM ledger WHERE ({where}){{bound}}"
               f" ORDER BY {_NEWEST_FIRST} LIMIT ? OFFSET ?")
        floor = self._newest_floor(where, params, offset + limit)
        if floor is not None:
            ids = [str(r[0]) for r in self.rows(sql.format(bound=" AND DataRichiesta >= ?"),
                                                [*params, floor, limit, offset])]
            if len(ids) == limit:
                return ids
        return [str(r[0]) for r in self.rows(sql.format(bound=""), [*params, limit, offset])]

    def _newest_floor(self, where: str, params: list[object], need: int) -> datetime | None:
        """The ``need``-th newest DataRichiesta of the matching rows in the newest parts:
        at least ``need`` matching rows reach it, so the ``need`` newest of the whole
        ledger do too. None where those parts hold fewer, or on ``ledger.csv``."""
        if self.source != "parquet":
            return None
        newest = part_paths(self.outbox.columnar_ledger)[-_PROBED_PARTS:]
        if not newest:
            return None
        files = ", ".join(_literal(os.fspath(path)) for path in newest)
        try:
            found = self.rows(
                f"SELECT DataRichiesta FROM read_parquet([{files}]) WHERE ({where})"
                " AND DataRichiesta IS NOT NULL ORDER BY DataRichiesta DESC LIMIT 1 OFFSET ?",
                [*params, need - 1])
        except duckdb.Error:  # a part replaced meanwhile: the unbounded question answers
            return None
        value = found[0][0] if found else None
        return value if isinstance(value, datetime) else None

    def empty(self) -> pa.Table:
        """No rows, with the ledger's columns and types."""
        return self.table(f"SELECT {_COLUMNS_SQL} FROM ledger WHERE FALSE")

    def select(self, which: LedgerFilter, columns: Sequence[str] | None = None) -> pa.Table:
        """Every matching row, in IdOperazione order (``load_ledger``)."""
        where, params = which.where()
        wanted = ", ".join(f'"{c}"' for c in (columns or LEDGER_COLUMNS))
        return self.table(
            f"SELECT {wanted} FROM ledger WHERE {where} ORDER BY IdOperazione", params)

    def batches(self, which: LedgerFilter, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Every matching row in IdOperazione order, in record batches (an export): streamed
        from the files, never the whole match in memory. No ORDER BY: the parts are read in
        the order of their names (insertion order is kept), which is IdOperazione order, as
        ledger.csv's rows are; a sort would hold the whole match. On a cursor of its own, so
        the panel's other questions are answered meanwhile."""
        where, params = which.where()
        with self._lock:
            cursor = self._con.cursor()
            self._cursors.add(cursor)
        try:
            reader: pa.RecordBatchReader = cursor.sql(
                f"SELECT {_COLUMNS_SQL} FROM ledger WHERE {where}", params=params,
            ).to_arrow_reader(batch_rows)
            yield from reader
        finally:
            cursor.close()

    def people_with_active(self, prefix: str, limit: int) -> list[str]:
        """At most ``limit`` codici fiscali, in order, starting with ``prefix``, that have
        an ATTIVATO certificate."""
        start = prefix.strip().upper()
        # The first rows in order, then unique: a top-N instead of a sort of every match;
        # only a page of one person's many requests needs the slower DISTINCT.
        first = [str(r[0]) for r in self.rows(
            f"SELECT CodiceFiscale FROM ledger WHERE {_ACTIVE_FROM} ORDER BY 1 LIMIT ?",
            [start, 10 * limit])]
        unique = sorted(set(first))
        if len(unique) < limit and len(first) == 10 * limit:
            unique = [str(r[0]) for r in self.rows(
                f"SELECT DISTINCT CodiceFiscale FROM ledger WHERE {_ACTIVE_FROM}"
                " ORDER BY 1 LIMIT ?", [start, limit])]
        return unique[:limit]

    def channels(self) -> list[str]:
        """Every channel the ledger has a request of (``""`` for the default), in order."""
        return [str(r[0]) for r in self.rows(
            "SELECT DISTINCT coalesce(Canale, '') FROM ledger ORDER BY 1")]

    def has_active(self, codice_fiscale: str) -> bool:
        return bool(self.rows(
            "SELECT 1 FROM ledger WHERE CodiceFiscale = ? AND Stato = 'ATTIVATO' LIMIT 1",
            [codice_fiscale.strip().upper()]))


_open: weakref.WeakSet[LedgerQuery] = weakref.WeakSet()


def interrupt_all() -> None:
    """Interrupt every query running in this process (at exit: see ``panels._threads``)."""
    for query in list(_open):
        query.interrupt()


def _literal(text: str) -> str:
    """A SQL string literal (file names are ours, but may hold a quote)."""
    return "'" + text.replace("'", "''") + "'"


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"not a month: {value!r}")
