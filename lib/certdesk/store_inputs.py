"""The store's facts about inputs and their kept originals: part of the store.

``Store`` has these queries (``InputFacts``); the writes are ``Transaction`` methods
(``record_input``... ``mark_done``; ``record_originals``, ``mark_pruned``,
``record_pruned_folders``). Which files hold the originals, and their format, is
``archive``'s business: here a pack is only a name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .store_rows import INPUT_COLUMNS, InputRecord, input_record

__all__ = ["InputFacts", "OriginalRecord"]


@dataclass(frozen=True)
class OriginalRecord:
    """Where one input's original is: ``size`` bytes at ``start`` in ``pack`` (a name
    under ``state/``); ``pack`` is '' for an original kept as a folder. ``pruned``: when
    the retention setting deleted it."""

    claim: str
    pack: str
    start: int
    size: int
    sha256: str
    pruned: str | None = None


class InputFacts:
    """Queries on ``inputs`` and ``originals`` (mixed into ``Store``, which owns the
    connection)."""

    _conn: sqlite3.Connection

    def input(self, claim: str) -> InputRecord | None:
        row = self._conn.execute(
            f"SELECT {INPUT_COLUMNS} FROM inputs WHERE claim = ?", (claim,)
        ).fetchone()
        return input_record(row) if row else None

    def pending_inputs(self) -> list[InputRecord]:
        rows = self._conn.execute(
            "SELECT claim FROM inputs WHERE done = 0 ORDER BY claim"
        ).fetchall()
        return [rec for (claim,) in rows if (rec := self.input(claim)) is not None]

    def iter_receipts(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(claim, file, receipt) of every input answered."""
        cursor = self._conn.execute(
            "SELECT claim, file, receipt FROM inputs WHERE receipt IS NOT NULL ORDER BY claim"
        )
        while rows := cursor.fetchmany(10_000):
            yield from ((r[0], r[1], json.loads(r[2])) for r in rows)

    def original(self, claim: str) -> OriginalRecord | None:
        row = self._conn.execute(
            "SELECT claim, pack, start, size, sha256, pruned FROM originals WHERE claim = ?",
            (claim,),
        ).fetchone()
        return OriginalRecord(*row) if row else None

    def pack_end(self, pack: str) -> int:
        """Where the last original recorded in ``pack`` ends (0: none); read from the
        index's last entry."""
        row = self._conn.execute(
            "SELECT start + size FROM originals WHERE pack = ? ORDER BY start DESC LIMIT 1",
            (pack,),
        ).fetchone()
        return int(row[0]) if row else 0

    def claims_named(self, file: str) -> list[str]:
        """The claims of every input recorded under the name ``file``, oldest first (a
        name may come back day after day). Reads the whole table: a person's question,
        never the daemon's."""
        return [
            row[0]
            for row in self._conn.execute(
                "SELECT claim FROM inputs WHERE file = ? ORDER BY claim", (file,)
            )
        ]
