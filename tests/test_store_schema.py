"""The store's schema: a new store gets ``schema.sql`` and the latest version at once; a
store made by an older version gets the migrations it lacks, once, and ends with exactly
the schema of a new one. And ``Store.bulk_load``: the history it writes is the daemon's."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certdesk import migrations
from certdesk.codes import message
from certdesk.errors import StoreError
from certdesk.records import JOURNAL_COLUMNS, csv_line
from certdesk.states import Stato
from certdesk.store import HistoricalRequest, Store
from certdesk.verify import verify_journal

LATEST = len(migrations.MIGRATIONS)

# The schema of the last release without migrations (lib/certdesk/store.py before issue
# 13), run whole at every start: its stores are at version 0, with every table and index.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id_operazione TEXT PRIMARY KEY,
    codice_fiscale TEXT NOT NULL,
    profilo TEXT NOT NULL,
    stato TEXT NOT NULL,
    data_richiesta TEXT NOT NULL,
    esito TEXT NOT NULL,
    file_origine TEXT NOT NULL,
    claim TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    spki_sha256 TEXT NOT NULL DEFAULT '',
    csr_der BLOB,
    data_scadenza TEXT,
    seriale TEXT UNIQUE,
    impronta_sha256 TEXT NOT NULL DEFAULT '',
    cert_der BLOB,
    motivazione TEXT NOT NULL DEFAULT '',
    data_annullamento TEXT,
    nota TEXT NOT NULL DEFAULT '',
    operatore TEXT NOT NULL DEFAULT '',
    ocsp_until TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS requests_ocsp ON requests (ocsp_until)
    WHERE stato IN ('ATTIVATO', 'ANNULLATO');
-- By codice fiscale alone (a person has a handful of rows; the state is filtered on
-- them): a change of state then leaves this index alone, one random page write less per
-- request at a million rows. The older (codice_fiscale, stato) index is replaced.
DROP INDEX IF EXISTS requests_cf;
CREATE INDEX IF NOT EXISTS requests_codice_fiscale ON requests (codice_fiscale);
-- A key's requests by the first 64 bits of its hash (the whole hash is compared on the
-- rows found): a key hash is random, so each new request inserts at a random place, and
-- SQLite keeps index pages nearly full, so an insert often rebalances three pages. Keys of
-- 16 characters instead of 64 fit four times as many per page: at a million rows that
-- measured 1.1 pages written per request instead of 3.7. Replaces the full-hash index.
DROP INDEX IF EXISTS requests_spki;
CREATE INDEX IF NOT EXISTS requests_spki_prefix ON requests (substr(spki_sha256, 1, 16))
    WHERE spki_sha256 != '';
-- Repeated inputs are found through their key (requests_spki_prefix): one random index
-- less to update per request, which at a million rows is one page write less per request.
DROP INDEX IF EXISTS requests_input;
CREATE INDEX IF NOT EXISTS requests_claim ON requests (claim);
CREATE INDEX IF NOT EXISTS requests_stato_scadenza ON requests (stato, data_scadenza);
-- The CRL's rows, in its order, read from this index alone (it covers the query, stato
-- included): a few MB instead of the cancelled rows scattered over the whole table.
-- Partial, so issuing never writes it; a row enters it when it is cancelled.
CREATE INDEX IF NOT EXISTS requests_revoked
    ON requests (data_annullamento, seriale, motivazione, data_scadenza, stato)
    WHERE stato = 'ANNULLATO';
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    data TEXT NOT NULL,
    id_operazione TEXT NOT NULL,
    da_stato TEXT NOT NULL,
    a_stato TEXT NOT NULL,
    motivazione TEXT NOT NULL,
    file_origine TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (
    claim TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    tipo TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    received TEXT NOT NULL,
    receipt TEXT,
    quarantined INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inputs_pending ON inputs (done) WHERE done = 0;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# The first release's (0a8669d): the same tables, the indexes since replaced, none of
# those added since. Its stores are at version 0 too.
FIRST_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id_operazione TEXT PRIMARY KEY,
    codice_fiscale TEXT NOT NULL,
    profilo TEXT NOT NULL,
    stato TEXT NOT NULL,
    data_richiesta TEXT NOT NULL,
    esito TEXT NOT NULL,
    file_origine TEXT NOT NULL,
    claim TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    spki_sha256 TEXT NOT NULL DEFAULT '',
    csr_der BLOB,
    data_scadenza TEXT,
    seriale TEXT UNIQUE,
    impronta_sha256 TEXT NOT NULL DEFAULT '',
    cert_der BLOB,
    motivazione TEXT NOT NULL DEFAULT '',
    data_annullamento TEXT,
    nota TEXT NOT NULL DEFAULT '',
    operatore TEXT NOT NULL DEFAULT '',
    ocsp_until TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS requests_ocsp ON requests (ocsp_until)
    WHERE stato IN ('ATTIVATO', 'ANNULLATO');
CREATE INDEX IF NOT EXISTS requests_cf ON requests (codice_fiscale, stato);
CREATE INDEX IF NOT EXISTS requests_spki ON requests (spki_sha256) WHERE spki_sha256 != '';
CREATE INDEX IF NOT EXISTS requests_input ON requests (input_sha256);
CREATE INDEX IF NOT EXISTS requests_stato_scadenza ON requests (stato, data_scadenza);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    data TEXT NOT NULL,
    id_operazione TEXT NOT NULL,
    da_stato TEXT NOT NULL,
    a_stato TEXT NOT NULL,
    motivazione TEXT NOT NULL,
    file_origine TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (
    claim TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    tipo TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    received TEXT NOT NULL,
    receipt TEXT,
    quarantined INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inputs_pending ON inputs (done) WHERE done = 0;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


Row = tuple[str, str, str, str | None]


def _schema(path: Path) -> list[Row]:
    """Every table and index as sqlite_master has it (the rootpage aside)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    finally:
        conn.close()
    return sorted(rows)


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _old_store(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.execute(
        "INSERT INTO requests (id_operazione, codice_fiscale, profilo, stato, data_richiesta,"
        " esito, file_origine, claim, input_sha256) VALUES ('20261128-000000001',"
        " 'RSSMRA80A01H501U', 'PERSONA_FISICA', 'RIFIUTATO', '2026-11-28T00:00:00Z', 'KO',"
        " 'a.csr', 'claim-1', 'ab')"
    )
    conn.commit()
    conn.close()


@pytest.fixture
def fresh_schema(tmp_path: Path) -> list[Row]:
    path = tmp_path / "fresh.sqlite3"
    Store(path).close()
    return _schema(path)


@pytest.fixture
def steps_run(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The numbers of the migration steps run from now on, in order."""
    ran: list[int] = []

    def counted(
        number: int, step: Callable[[sqlite3.Connection], None]
    ) -> Callable[[sqlite3.Connection], None]:
        def run(conn: sqlite3.Connection) -> None:
            ran.append(number)
            step(conn)

        return run

    monkeypatch.setattr(
        migrations,
        "MIGRATIONS",
        tuple(counted(n, step) for n, step in enumerate(migrations.MIGRATIONS, start=1)),
    )
    return ran


def test_a_new_store_gets_the_schema_and_the_latest_version(
    tmp_path: Path, steps_run: list[int]
) -> None:
    path = tmp_path / "certdesk.sqlite3"
    Store(path).close()
    assert steps_run == []
    assert _version(path) == LATEST
    names = {name for _, name, _, sql in _schema(path) if sql is not None}
    assert names == {
        "requests", "events", "inputs", "meta", "requests_ocsp", "requests_codice_fiscale",
        "requests_spki_prefix", "requests_claim", "requests_stato_scadenza",
        "requests_revoked", "inputs_pending", "originals", "originals_pack", "emittenti",
        "canali", "requests_canale",
    }  # fmt: skip
    # schema.sql is the whole schema: its statements, as sqlite_master stores them.
    stored = {sql for _, _, _, sql in _schema(path) if sql is not None}
    assert stored == set(migrations.schema_statements())


# The last release without versions has schema.sql's indexes already, statement for
# statement (steps 1-5 find nothing left to do), but not the originals' table (step 6) nor
# the issuers (step 7); the first release's has older indexes too.
@pytest.mark.parametrize(
    ("script", "current"), [(OLD_SCHEMA, False), (FIRST_SCHEMA, False)], ids=["last", "first"]
)
def test_an_old_store_migrates_to_the_schema_of_a_new_one(
    tmp_path: Path, script: str, current: bool, fresh_schema: list[Row], steps_run: list[int]
) -> None:
    path = tmp_path / "old.sqlite3"
    _old_store(path, script)
    assert _version(path) == 0
    assert (_schema(path) == fresh_schema) is current
    store = Store(path)
    try:
        assert store.get("20261128-000000001") is not None  # its rows are kept
    finally:
        store.close()
    assert steps_run == list(range(1, LATEST + 1))
    assert _schema(path) == fresh_schema
    assert _version(path) == LATEST


def test_opening_twice_runs_nothing_twice(
    tmp_path: Path, fresh_schema: list[Row], steps_run: list[int]
) -> None:
    path = tmp_path / "old.sqlite3"
    _old_store(path, OLD_SCHEMA)
    Store(path).close()
    assert steps_run == list(range(1, LATEST + 1))
    Store(path).close()
    Store(path).close()
    assert steps_run == list(range(1, LATEST + 1))
    assert _schema(path) == fresh_schema


def test_a_store_part_way_gets_only_the_steps_it_lacks(
    tmp_path: Path, fresh_schema: list[Row], steps_run: list[int]
) -> None:
    path = tmp_path / "old.sqlite3"
    _old_store(path, FIRST_SCHEMA)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX requests_input")  # step 2 done by hand,
    conn.execute("PRAGMA user_version = 2")  # and recorded, with step 1 not done
    conn.close()
    Store(path).close()
    assert steps_run == list(range(3, LATEST + 1))
    # Step 1 (requests_claim) was skipped: recorded as done, it is not run again.
    assert {r[1] for r in fresh_schema} - {r[1] for r in _schema(path)} == {"requests_claim"}


def test_a_failed_migration_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    _old_store(path, FIRST_SCHEMA)
    before = _schema(path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE INDEX requests_broken ON requests (no_such_column)")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    with pytest.raises(StoreError, match="no_such_column"):
        Store(path)
    assert _schema(path) == before
    assert _version(path) == 0


def test_a_store_of_a_newer_certdesk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "certdesk.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert refused.value.code == "ARCHIVIO_NON_DISPONIBILE"
    expected = message("ARCHIVIO_NON_DISPONIBILE", "versione_futura", versione=LATEST + 1,
                       ultima=LATEST)  # fmt: skip
    assert expected in refused.value.message


def test_a_database_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    with pytest.raises(StoreError) as refused:
        Store(path)
    expected = message("ARCHIVIO_NON_DISPONIBILE", "non_archivio", tabelle="notes")
    assert expected in refused.value.message
    assert _schema(path) == [("table", "notes", "notes", "CREATE TABLE notes (text TEXT)")]


def test_each_step_is_numbered_and_says_why() -> None:
    for number, step in enumerate(migrations.MIGRATIONS, start=1):
        assert step.__name__.startswith(f"_v{number}_"), step.__name__
        assert (step.__doc__ or "").startswith(f"{number}. "), step.__name__


# -- Store.bulk_load ------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def _history(count: int) -> Iterator[HistoricalRequest]:
    states = [Stato.ATTIVATO, Stato.RIFIUTATO, Stato.ANNULLATO, Stato.SCADUTO]
    for k in range(count):
        stato = states[k % 4]
        issued = stato is not Stato.RIFIUTATO
        richiesta = NOW - timedelta(days=1000 - k)
        id_op = f"{richiesta:%Y%m%d}-{k + 1:09d}"
        origine = f"richiesta {k},\"{k}\".csr"  # a name that CSV must quote
        yield HistoricalRequest(
            id_operazione=id_op,
            codice_fiscale=f"CF{k % 3}",
            profilo="PERSONA_FISICA",
            stato=stato,
            data_richiesta=richiesta,
            esito="OK" if issued else "CSR_FIRMA_NON_VALIDA",
            file_origine=origine,
            claim=f"claim-{k}",
            input_sha256=f"{k:064x}",
            receipt={"file": origine, "esito": "OK" if issued else "KO", "nota": "è"},
            spki_sha256=f"{k + 1:064x}" if issued else "",
            seriale=f"{k + 1:x}" if issued else "",
            data_scadenza=(
                NOW - timedelta(days=k) if stato is Stato.SCADUTO else NOW + timedelta(days=k)
            ) if issued else None,
            data_annullamento=NOW - timedelta(hours=count - k)
            if stato is Stato.ANNULLATO else None,
            motivazione="ALTRO" if stato is Stato.ANNULLATO else "",
        )  # fmt: skip


def test_bulk_load_writes_the_daemons_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "certdesk.sqlite3")
    journal = tmp_path / "journal.csv"
    published: list[tuple[str, ...]] = []
    try:
        store.bulk_load(_history(10), on_journal=published.extend)
        journal.write_text(
            csv_line(JOURNAL_COLUMNS) + "".join(map(csv_line, published)), encoding="utf-8"
        )
        # The chain verifies, and what was handed out is what the store has.
        assert verify_journal(journal, store) == len(published)
        assert published == [row for rows in store.iter_journal_rows() for row in rows]
        # Each request's arrival in order, then the later changes in order of time.
        events = [(e.id_operazione, e.da_stato, e.a_stato) for e in store.iter_events()]
        first = [h.id_operazione for h in _history(10)]
        assert events[:3] == [
            (first[0], "", "IN_GENERAZIONE"), (first[0], "IN_GENERAZIONE", "ATTIVATO"),
            (first[1], "", "RIFIUTATO"),
        ]  # fmt: skip
        assert [e[2] for e in events[-4:]] == ["SCADUTO"] * 2 + ["ANNULLATO"] * 2
        later = [e.data for e in store.iter_events() if e.da_stato == "ATTIVATO"]
        assert later == sorted(later)
        # Inputs are settled as the daemon settles them; the counter goes on.
        refused = store.input("claim-1")
        assert refused is not None and refused.done and refused.quarantined
        assert refused.receipt == {"file": "richiesta 1,\"1\".csr", "esito": "KO", "nota": "è"}
        issued = store.input("claim-0")
        assert issued is not None and issued.done and not issued.quarantined
        with store.transaction() as txn:
            assert txn.allocate_id(NOW).endswith("-000000011")
        # A new request's event chains on after the loaded ones.
        with store.transaction() as txn:
            txn.expire(first[0], now=NOW)
        journal.write_text(
            csv_line(JOURNAL_COLUMNS)
            + "".join(csv_line(r) for rows in store.iter_journal_rows() for r in rows),
            encoding="utf-8",
        )
        assert verify_journal(journal, store) == len(published) + 1
    finally:
        store.close()


def test_bulk_load_with_indexes_built_after_ends_with_the_schema(
    tmp_path: Path, fresh_schema: list[Row]
) -> None:
    path = tmp_path / "certdesk.sqlite3"
    store = Store(path)
    try:
        store.bulk_load(_history(8), journal=False, build_indexes_after=True)
        assert store.last_event_seq() == 0
        assert store.input("claim-0") is None
        assert len(list(store.iter_requests())) == 8
        assert [s for s, _, _ in store.revoked_entries(NOW - timedelta(days=1))] == ["3", "7"]
    finally:
        store.close()
    assert _schema(path) == fresh_schema


def test_bulk_load_fills_only_a_new_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "certdesk.sqlite3")
    try:
        store.bulk_load(_history(2))
        with pytest.raises(ValueError, match="new store"):
            store.bulk_load(_history(2))
        assert len(list(store.iter_requests())) == 2
    finally:
        store.close()
