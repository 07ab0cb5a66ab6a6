"""A reader never changes the store: ``Store(path, read_only=True)``, used by the panels,
``certdesk status``, ``canale list``, ``verify-ledger`` and ``archivio``, makes no store
where there is none and upgrades none of an older certdesk (whose daemon may still be
running), and says which."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_store_schema import _version

from certdesk import migrations
from certdesk.codes import message
from certdesk.errors import StoreError
from certdesk.panels._channels import recorded_channels
from certdesk.store import Store
from conftest import run_certdesk

LATEST = len(migrations.MIGRATIONS)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _mark_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version:d}")
    conn.close()


def test_a_reader_reads_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "certdesk.sqlite3"
    writer = Store(path)
    with writer.transaction() as txn:
        txn.add_channel("acme", "", NOW)
    writer.close()
    reader = Store(path, read_only=True)
    try:
        assert [c.nome for c in reader.channels()] == ["acme"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"), \
                reader.transaction() as txn:
            txn.add_channel("beta", "", NOW)
    finally:
        reader.close()
    assert [c.nome for c in Store(path).channels()] == ["acme"]


def test_a_reader_makes_no_store(tmp_path: Path) -> None:
    path = tmp_path / "state" / "certdesk.sqlite3"
    with pytest.raises(StoreError) as refused:
        Store(path, read_only=True)
    assert refused.value.code == "ARCHIVIO_NON_DISPONIBILE"
    assert message("ARCHIVIO_NON_DISPONIBILE", "assente") in refused.value.message
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(("version", "case"), [
    (LATEST - 1, "versione_precedente"), (LATEST + 1, "versione_futura")])
def test_a_reader_upgrades_no_store_of_another_version(tmp_path: Path, version: int,
                                                       case: str) -> None:
    path = tmp_path / "certdesk.sqlite3"
    Store(path).close()
    _mark_version(path, version)
    with pytest.raises(StoreError) as refused:
        Store(path, read_only=True)
    assert message("ARCHIVIO_NON_DISPONIBILE", case, versione=version,
                   ultima=LATEST) in refused.value.message
    assert _version(path) == version
    # the panels list the ledger's channels alone, and leave the store as it is
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    shutil.copy(path, home / "state" / "certdesk.sqlite3")
    assert recorded_channels(home) == []
    assert _version(home / "state" / "certdesk.sqlite3") == version


def test_status_and_canale_list_only_read(ca_template: Path, tmp_path: Path) -> None:
    """Under a daemon of the version before (its store one step older), ``status`` and
    ``canale list`` say so and leave the store at its version; a command that writes
    (``canale add``) upgrades it, as the daemon of this version does at its start."""
    home = tmp_path / "home"
    shutil.copytree(ca_template, home)
    database = home / "state" / "certdesk.sqlite3"
    Store(database).close()
    _mark_version(database, LATEST - 1)
    expected = message("ARCHIVIO_NON_DISPONIBILE", "versione_precedente",
                       versione=LATEST - 1, ultima=LATEST)
    readers = (("status",), ("canale", "list"), ("verify-ledger",), ("archivio", "000000001"))
    for command in readers:
        done = run_certdesk(home, *command, check=False)
        assert done.returncode != 0, command
        assert "ARCHIVIO_NON_DISPONIBILE" in done.stderr and expected in done.stderr, command
        assert "Traceback" not in done.stderr
        assert _version(database) == LATEST - 1, command
    run_certdesk(home, "canale", "add", "acme")
    assert _version(database) == LATEST
    listed = run_certdesk(home, "canale", "list")
    assert "acme" in listed.stdout


@pytest.mark.parametrize("command", [("status",), ("verify-ledger",), ("archivio", "000000001")])
def test_a_reader_of_a_home_never_started(tmp_path: Path, command: tuple[str, ...]) -> None:
    home = tmp_path / "new"
    home.mkdir()
    done = run_certdesk(home, *command, check=False)
    assert done.returncode != 0
    assert message("ARCHIVIO_NON_DISPONIBILE", "assente") in done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "state").exists()
