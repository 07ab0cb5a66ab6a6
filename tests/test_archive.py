"""The archive of originals (issue 17, part 4): every input's bytes appended to a day's
pack, found again by ``certdesk archivio`` byte for byte; a torn pack tail cut; retention
deleting only old packs; a home archived in folders by an older certdesk still read.

The kill -9 case (every input has exactly one original, in whole records) is in
tests/test_daemon_crash.py's invariants."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from archive_support import archivio, assert_packs_private, kept_by_name, pack_records
from daemon_support import make_csr, private_key_pem

from certdesk.home import Home
from certdesk.intake import claim
from certdesk.runtime import open_engine
from certdesk.service import Engine
from conftest import PASSPHRASE, drop, process, receipt, run_certdesk

DAY = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _refused(home: Path, *args: str) -> str:
    """``certdesk archivio ARGS`` refused: its one stderr line, without a traceback."""
    result = run_certdesk(home, "archivio", *args, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return result.stderr


def test_every_original_comes_back_byte_for_byte(home: Path, tmp_path: Path) -> None:
    """A live ``certdesk watch`` accepts and refuses requests, an annullamento and other
    files; ``certdesk archivio`` writes each original out as it was dropped: a request by
    its IdOperazione (accepted or refused), anything by its receipt's name or claim."""
    dropped = {
        "ok.csr": make_csr(1),
        "bad-cf.csr": make_csr(2, common_name="RSSMRA80A01H501X"),
        "chiave.csr": private_key_pem(3),
        "note.txt": b"\x00\xffnot an input\n",
        "empty.csr": b"",
    }
    for name, data in dropped.items():
        drop(home, name, data)
    process(home)
    id_ok = receipt(home, "ok.csr")["id_operazione"]
    row = next(r for r in _ledger(home) if r["IdOperazione"] == id_ok)
    annullo = json.dumps({
        "tipo": "annullamento", "codice_fiscale": row["CodiceFiscale"],
        "id_operazione": [id_ok], "motivazione": "ALTRO", "nota": "prova",
    }).encode()  # fmt: skip
    dropped["annullo.json"] = annullo
    drop(home, "annullo.json", annullo)
    process(home)
    assert receipt(home, "annullo.json")["esito"] == "OK"

    out = tmp_path / "out"
    for name in ("ok.csr", "bad-cf.csr", "chiave.csr", "empty.csr"):  # requests: an id each
        id_op = receipt(home, name)["id_operazione"]
        assert id_op, name
        assert archivio(home, out / f"{name}.by-id", id_op) == dropped[name], name
    for name, data in dropped.items():
        assert archivio(home, out / f"{name}.by-name", "--file", name) == data, name
    kept = kept_by_name(home)
    note = kept["note.txt"]
    assert archivio(home, out / "by-claim", "--claim", note.claim) == dropped["note.txt"]
    assert {n for n, k in kept.items() if not k.quarantined} == {"ok.csr", "annullo.json"}
    assert all(k.packed for k in kept.values())
    assert_packs_private(home)
    # the same name again: the latest is written, and stderr says there were two
    drop(home, "note.txt", b"second\n")
    process(home)
    out.mkdir(exist_ok=True)
    again = run_certdesk(home, "archivio", "--file", "note.txt", "--out", str(out / "again"))
    assert (out / "again").read_bytes() == b"second\n" and "2 inputs" in again.stderr


def test_archivio_says_what_it_cannot_write(home: Path, tmp_path: Path) -> None:
    drop(home, "ok.csr", make_csr(5))
    (home / "inbox" / "link.csr").symlink_to(tmp_path)
    process(home)
    assert "ORIGINALE_NON_TROVATO" in _refused(home, "20990101-000000001")
    assert "ORIGINALE_NON_TROVATO" in _refused(home, "--file", "mai-visto.csr")
    assert "OPZIONE_NON_VALIDA" in _refused(home)
    assert "ORIGINALE_NON_REGOLARE" in _refused(home, "--file", "link.csr")
    # one byte changed in the pack: the SHA-256 recorded says so
    (pack,) = (home / "state" / "archive").glob("*.pack")
    data = bytearray(pack.read_bytes())
    data[-10] ^= 1
    pack.write_bytes(bytes(data))
    assert "ORIGINALE_DANNEGGIATO" in _refused(home, receipt(home, "ok.csr")["id_operazione"])


def _ledger(home: Path) -> list[dict[str, str]]:
    import csv

    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- in this process, with the clock set ---------------------------------------------------
@pytest.fixture
def engine_at(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """``engine_at(moment)``: an engine on ``home`` whose clock says ``moment``."""
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    opened: list[Engine] = []

    def at(moment: datetime) -> Engine:
        for engine in opened:
            engine.close()
        opened.clear()
        opened.append(open_engine(Home.at(home), workers=1, clock=lambda: moment))
        opened[-1].recover()
        return opened[-1]

    yield at
    for engine in opened:
        engine.close()


def _feed(engine: Engine, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        drop(engine.home.root, name, data)
    engine.process([c for name in files if (c := claim(engine.home, name)) is not None])


def test_a_torn_pack_tail_is_cut_before_the_next_append(  # type: ignore[no-untyped-def]
    home: Path, engine_at
) -> None:
    engine = engine_at(DAY)
    _feed(engine, {"a.csr": make_csr(11), "b.csr": make_csr(12)})
    (pack,) = (home / "state" / "archive").glob("*.pack")
    assert pack.name == "20260310.pack"
    whole = pack.stat().st_size
    # a kill in the middle of an append: half a header and some bytes past the end
    with open(pack, "ab") as torn:
        torn.write(b'{"claim": "20260310T093000000000-deadbeef", "file": "c.csr", "si')
    engine = engine_at(DAY)  # a restart
    _feed(engine, {"c.csr": make_csr(13)})
    records = pack_records(home)  # whole records only: the torn bytes were cut
    assert len(records) == 3 and pack.stat().st_size > whole
    kept = kept_by_name(home)
    for name, n in (("a.csr", 11), ("b.csr", 12), ("c.csr", 13)):
        assert kept[name].data == make_csr(n)
        recorded = engine.store.original(kept[name].claim)
        assert recorded is not None and records[kept[name].claim][1] == recorded.start


def test_retention_deletes_only_old_packs_and_archivio_says_so(
    home: Path, engine_at, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    engine = engine_at(DAY)
    _feed(engine, {"old.csr": make_csr(21), "old-bad.txt": b"refused\n"})
    # a folder kept by an older certdesk, of the same day
    legacy = home / "state" / "archive" / "20260310T080000000000-0badcafe"
    legacy.mkdir(mode=0o700)
    (legacy / "legacy.csr").write_bytes(b"legacy\n")
    later = DAY + timedelta(days=3)
    engine = engine_at(later)
    _feed(engine, {"new.csr": make_csr(22)})
    engine.periodic()  # retention not set: everything stays
    assert len(list((home / "state").glob("*/2026031*.pack"))) == 3 and legacy.exists()

    with open(home / "certdesk.toml", "a") as toml:
        toml.write("\n[archive]\nretention_days = 2\n")
    engine = engine_at(later)
    engine.periodic()
    assert sorted(p.name for p in (home / "state").glob("*/*.pack")) == ["20260313.pack"]
    assert not legacy.exists()
    old_id = receipt(home, "old.csr")["id_operazione"]
    assert "ORIGINALE_ELIMINATO" in _refused(home, old_id)
    assert "ORIGINALE_ELIMINATO" in _refused(home, "--file", "old-bad.txt")
    out = tmp_path / "new"
    assert archivio(home, out, receipt(home, "new.csr")["id_operazione"]) == make_csr(22)


def test_retention_must_be_zero_or_more(home: Path) -> None:
    with open(home / "certdesk.toml", "a") as toml:
        toml.write("\n[archive]\nretention_days = -1\n")
    watch = run_certdesk(home, "watch", "--once", check=False)
    assert watch.returncode != 0 and "archive.retention_days" in watch.stderr


def test_a_home_archived_in_folders_keeps_its_originals(home: Path, tmp_path: Path) -> None:
    """A home whose originals an older certdesk kept one folder per input (and whose
    store has no ``originals``): each is still written out by ``archivio``; new inputs go
    to packs."""
    old = {"uno.csr": make_csr(31), "due.csr": make_csr(32, common_name="nope"), "x.txt": b"x"}
    for name, data in old.items():
        drop(home, name, data)
    process(home)
    _as_an_older_certdesk_left_it(home)
    assert not list((home / "state").glob("*/*.pack"))
    drop(home, "tre.csr", make_csr(33))
    process(home)  # migrates the store, packs the new input
    out = tmp_path / "out"
    for name, data in old.items():
        assert archivio(home, out / name, "--file", name) == data
    uno = receipt(home, "uno.csr")["id_operazione"]
    assert archivio(home, out / "uno-id", uno) == old["uno.csr"]
    kept = kept_by_name(home)
    assert not any(kept[name].packed for name in old) and kept["tre.csr"].packed
    assert kept["tre.csr"].data == make_csr(33)


def _as_an_older_certdesk_left_it(home: Path) -> None:
    """state/archive/<claim>/<name> and state/quarantine/<claim>/<name>, a store at
    version 5 without the originals' table, no packs."""
    kept = kept_by_name(home)
    for original in kept.values():
        folder = home / "state" / ("quarantine" if original.quarantined else "archive")
        (folder / original.claim).mkdir(mode=0o700)
        assert original.data is not None
        (folder / original.claim / original.name).write_bytes(original.data)
    for pack in (home / "state").glob("*/*.pack"):
        pack.unlink()
    with sqlite3.connect(home / "state" / "certdesk.sqlite3") as conn:
        conn.execute("DROP TABLE originals")
        conn.execute("PRAGMA user_version = 5")
    assert os.listdir(home / "state" / "work") == []
    shutil.rmtree(home / "state" / "work")
    (home / "state" / "work").mkdir(mode=0o700)
