"""The journal's hash chain, written inside the transaction whose changes it records.

Part of the store (``store.py``): ``Transaction`` appends one event per state change, and
``Store.bulk_load`` a whole history, through the same chain, so both chain it alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .records import GENESIS_HASH, chain_hash, journal_hashed, printable
from .store_rows import JournalChange

__all__ = ["JournalChain"]


class JournalChain:
    """The ``events`` rows of one transaction, each hash covering its row and the hash
    before it; the chain's head is read from the store at the first append."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._head: str | None = None
        self._next_seq = 0

    def append(
        self,
        changes: Sequence[JournalChange],
        published: list[tuple[str, ...]] | None = None,
    ) -> None:
        """Journal rows for (data, id, from, to, motivazione, file, canale) changes, chained in
        order; times and states as the journal writes them. Each row's ``journal.csv``
        fields (as ``Store.iter_journal_rows`` gives them) go to ``published`` if given."""
        if self._head is None:
            row = self._conn.execute(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            self._next_seq, self._head = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
        rows = []
        head, seq = self._head, self._next_seq
        for data, id_op, da, a, motivazione, origine, canale in changes:
            fields = (str(seq), data, id_op, da, a, motivazione, printable(origine))
            head = chain_hash(head, journal_hashed(fields, canale))
            rows.append((seq, data, id_op, da, a, motivazione, origine, head, canale))
            if published is not None:
                published.append((*fields, head, canale))
            seq += 1
        self._conn.executemany(
            "INSERT INTO events (seq, data, id_operazione, da_stato, a_stato, motivazione,"
            " file_origine, hash, canale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._head, self._next_seq = head, seq
