"""The state store's SQLite connection: opened to write (the daemon, and the commands that
change the store) or only to read (the panels, ``status``, ``canale list``,
``verify-ledger``, ``archivio``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .codes import refusal
from .errors import StoreError
from .migrations import check_current, prepare

__all__ = ["CACHE_KIB", "connect_for_reading", "connect_for_writing"]

# 32 MiB of page cache (SQLite's default 2 MiB): a million rows' upper index levels stay.
CACHE_KIB = 32 * 1024


def connect_for_writing(path: Path) -> sqlite3.Connection:
    """The store at ``path``, made if there is none, brought to this certdesk's schema."""

    def setup(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed transaction survives power loss, not only a killed process;
        # receipts are written only after the commit that they report.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Checkpoints copy the WAL into the database file (read, write, fsync): at
        # SQLite's default of every 1000 pages they would fall on the issuing path.
        # The daemon checkpoints when idle (``checkpoint``); this bound (64 MiB) only
        # keeps the WAL from growing without limit under endless load.
        conn.execute("PRAGMA wal_autocheckpoint = 16384")
        prepare(conn)  # schema.sql for a new store, migrations for an old one

    def connect() -> sqlite3.Connection:
        # Operators' names and notes live here: 0600 like the keys (SQLite gives its
        # -wal and -shm files the database file's mode).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    return _opened(path, connect, setup)


def connect_for_reading(path: Path) -> sqlite3.Connection:
    """The store at ``path`` to read, never changed: nothing is created, no schema made,
    no migration run (a newer certdesk's reader must not upgrade a store under an older
    daemon still running). Refused unless there is one, with this certdesk's schema."""

    def setup(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 10000")
        check_current(conn)

    def connect() -> sqlite3.Connection:
        if not path.is_file():
            raise refusal("ARCHIVIO_NON_DISPONIBILE", "assente")
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None, check_same_thread=False)

    return _opened(path, connect, setup)


def _opened(path: Path, connect: Callable[[], sqlite3.Connection],
            setup: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    """``connect()`` then ``setup()``; any failure is ARCHIVIO_NON_DISPONIBILE, saying why."""
    conn: sqlite3.Connection | None = None
    try:
        conn = connect()
        setup(conn)
    except (OSError, sqlite3.Error, StoreError) as exc:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        reason = exc.message if isinstance(exc, StoreError) else exc
        raise refusal("ARCHIVIO_NON_DISPONIBILE", file=path, errore=reason) from None
    return conn
