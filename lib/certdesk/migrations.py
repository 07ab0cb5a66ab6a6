"""The state store's schema (``schema.sql``) and the steps that bring older stores to it.

A store records in ``PRAGMA user_version`` how many steps of ``MIGRATIONS`` it has had.
A new store gets ``schema.sql`` and the latest version at once; a store of an older
version gets the steps it lacks, in order, each exactly once. ``prepare`` does either, in
one transaction: a store is always entirely at one version.

Version 0 is every store made before the version was kept (until issue 13): each has
the indexes of the last release that opened it (every release re-ran its whole schema,
``IF NOT EXISTS``, at each start), so steps 1-5 retrace that history with ``IF EXISTS``
and ``IF NOT EXISTS``: each does what is left of its change. The tables have not
changed since the first release.

A change to ``schema.sql`` is a new step at the end of ``MIGRATIONS`` that makes the
same change to an existing store (tests/test_store_schema.py checks that a migrated
store and a new one have the same schema, statement for statement).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable
from functools import cache
from importlib.resources import files

from .codes import refusal

__all__ = ["MIGRATIONS", "index_statements", "prepare", "schema_statements"]

_TABLES = frozenset({"requests", "events", "inputs", "meta"})


def _v1_index_by_claim(conn: sqlite3.Connection) -> None:
    """1. ``requests_claim``: a start-up after a crash finds what each claimed input
    became by its claim, without reading the whole table."""
    conn.execute("CREATE INDEX IF NOT EXISTS requests_claim ON requests (claim)")


def _v2_no_index_by_input(conn: sqlite3.Connection) -> None:
    """2. ``requests_input`` (by the input's hash) dropped: a repeated input has the same
    key, so it is found through the key's index; one index less to update per request."""
    conn.execute("DROP INDEX IF EXISTS requests_input")


def _v3_index_by_codice_fiscale(conn: sqlite3.Connection) -> None:
    """3. ``requests_cf`` on (codice_fiscale, stato) replaced by ``requests_codice_fiscale``
    on codice_fiscale alone: a person has a handful of rows, the state is filtered on them,
    and a change of state no longer writes this index."""
    conn.execute("DROP INDEX IF EXISTS requests_cf")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS requests_codice_fiscale ON requests (codice_fiscale)"
    )


def _v4_index_of_revoked(conn: sqlite3.Connection) -> None:
    """4. ``requests_revoked``: the CRL's rows in the CRL's order, read from this covering
    index alone instead of from the cancelled rows scattered over the table; partial, so
    issuing never writes it."""
    conn.execute(
        "CREATE INDEX IF NOT EXISTS requests_revoked\n"
        "    ON requests (data_annullamento, seriale, motivazione, data_scadenza, stato)\n"
        "    WHERE stato = 'ANNULLATO'"
    )


def _v5_index_by_key_prefix(conn: sqlite3.Connection) -> None:
    """5. ``requests_spki`` on the whole key hash replaced by ``requests_spki_prefix`` on its
    first 64 bits (the whole hash is compared on the rows found): key hashes are random,
    so every request inserts at a random place, and entries of 16 characters instead of
    64 fit four times as many per page, which then fill and split less often."""
    conn.execute("DROP INDEX IF EXISTS requests_spki")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS requests_spki_prefix"
        " ON requests (substr(spki_sha256, 1, 16))\n    WHERE spki_sha256 != ''"
    )


def _v6_originals_in_packs(conn: sqlite3.Connection) -> None:
    """6. ``originals``: each input's original is appended to a day's pack instead of kept
    in a folder of its own (8 KiB on disk for a 900-byte request); the store says where.
    Older stores' folders stay where they are and are read as they are (``archive_read``)."""
    conn.execute(  # IF NOT EXISTS: a store at an older version may have it (a downgrade)
        "CREATE TABLE IF NOT EXISTS originals (\n    claim TEXT PRIMARY KEY,\n"
        "    pack TEXT NOT NULL,\n"
        "    start INTEGER NOT NULL,\n    size INTEGER NOT NULL,\n"
        "    sha256 TEXT NOT NULL,\n    pruned TEXT\n)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS originals_pack ON originals (pack, start)")


def _v7_issuers(conn: sqlite3.Connection) -> None:
    """7. Issuing CA rollover: each request names the issuer that signs it (``emittente``;
    every existing one belongs to the first, ``gen1``: a constant default, so the column
    costs no rewrite of the table), the issuers made by ``certdesk rollover`` are listed
    (``emittenti``), and the CRL's covering index leads with the issuer (one CRL each)."""
    # each part once: a store recorded at an older version may have had this step
    columns = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    if "emittente" not in columns:
        conn.execute("ALTER TABLE requests ADD COLUMN emittente TEXT NOT NULL DEFAULT 'gen1'")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS emittenti (\n    nome TEXT PRIMARY KEY,\n"
        "    generazione INTEGER NOT NULL UNIQUE,\n    attivo_dal TEXT NOT NULL,\n"
        "    creato TEXT NOT NULL\n)"
    )
    conn.execute("DROP INDEX IF EXISTS requests_revoked")
    conn.execute(index_statements()["requests_revoked"])


def _v8_channels(conn: sqlite3.Connection) -> None:
    """8. Integrator channels: each request and each journal row names its channel
    (``canale``; every existing one came through the top-level inbox/, ``''``: a constant
    default, no rewrite of either table), and the channels made by ``certdesk canale`` are
    listed (``canali``); a partial index finds a channel's own rows (``requests_canale``)."""
    for table in ("requests", "events"):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "canale" not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN canale TEXT NOT NULL DEFAULT ''")
    conn.execute(index_statements()["requests_canale"].replace("INDEX", "INDEX IF NOT EXISTS", 1))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS canali (\n    nome TEXT PRIMARY KEY,\n"
        "    gruppo TEXT NOT NULL,\n    creato TEXT NOT NULL,\n    ritirato TEXT\n)"
    )


# Step n is MIGRATIONS[n - 1]; a store at version n has had steps 1 to n.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_index_by_claim,
    _v2_no_index_by_input,
    _v3_index_by_codice_fiscale,
    _v4_index_of_revoked,
    _v5_index_by_key_prefix,
    _v6_originals_in_packs,
    _v7_issuers,
    _v8_channels,
)


@cache
def schema_statements() -> tuple[str, ...]:
    """The statements of ``schema.sql``, in order, without its comments."""
    text = files("certdesk").joinpath("schema.sql").read_text(encoding="utf-8")
    statements: list[str] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip().removesuffix(";"))
            pending = ""
    if pending.strip():
        raise ValueError(f"schema.sql ends inside a statement: {pending.strip()[:60]!r}")
    return tuple(statements)


_INDEX_NAME = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(\w+)", re.IGNORECASE)


def index_statements() -> dict[str, str]:
    """The ``CREATE INDEX`` statements of ``schema.sql`` by index name."""
    return {
        match[1]: statement
        for statement in schema_statements()
        if (match := _INDEX_NAME.match(statement))
    }


def prepare(conn: sqlite3.Connection) -> None:
    """Bring the store at ``conn`` (autocommit, no transaction open) to the current
    schema: a new, empty one gets ``schema.sql``, an older one the steps it lacks.

    A store already current costs one read of its header and takes no lock. Raises
    ``StoreError`` (ARCHIVIO_NON_DISPONIBILE) for a store made by a newer certdesk, or a
    database that is not a state store."""
    latest = len(MIGRATIONS)
    if _version(conn) == latest:
        return
    # Two processes may open an old store at once: the second waits here, then finds the
    # store current.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)
        if version > latest:
            raise refusal(
                "ARCHIVIO_NON_DISPONIBILE", "versione_futura", versione=version, ultima=latest
            )
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if version == 0 and not tables:
            for statement in schema_statements():
                conn.execute(statement)
        elif tables >= _TABLES:
            for number in range(version + 1, latest + 1):
                MIGRATIONS[number - 1](conn)
        else:
            raise refusal(
                "ARCHIVIO_NON_DISPONIBILE", "non_archivio", tabelle=", ".join(sorted(tables))
            )
        # PRAGMA takes no parameters; ``latest`` is an int.
        conn.execute(f"PRAGMA user_version = {latest:d}")
        conn.execute("COMMIT")
    except BaseException:
        # The error raised says what went wrong; a failed ROLLBACK would only hide it.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def check_current(conn: sqlite3.Connection) -> None:
    """For a reader, which never changes the store: raise ``StoreError``
    (ARCHIVIO_NON_DISPONIBILE) unless the store at ``conn`` has this certdesk's schema.
    An older store is upgraded only by a command that writes (the daemon's start), never
    under a daemon of its own version still running."""
    latest, version = len(MIGRATIONS), _version(conn)
    if version > latest:
        raise refusal("ARCHIVIO_NON_DISPONIBILE", "versione_futura", versione=version,
                      ultima=latest)
    if version < latest:
        raise refusal("ARCHIVIO_NON_DISPONIBILE", "versione_precedente", versione=version,
                      ultima=latest)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
