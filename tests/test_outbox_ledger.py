"""``outbox/ledger.csv`` (``outbox_ledger.py``) at scale: the fast rebuild, rows updated or
put in place without a rebuild, and the catch-up after a crash, each equal to what a
rebuild from the store writes."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from engine_support import cf_n, csr_for, key_n

from certdesk.intake import claim
from certdesk.records import journal_line, ledger_line
from certdesk.service import Engine

pytestmark = pytest.mark.timeout(120)


def test_fast_ledger_rebuild_equals_record_by_record(engine: Engine) -> None:
    names = ["plain.csr", 'with,comma "quoted".csr', "new\nline\x07.csr", "refused.csr"]
    for i, name in enumerate(names):
        data = csr_for(cf_n(40 + i), key_n(10 + i)) if name != "refused.csr" else b"garbage"
        (engine.home.inbox / name).write_bytes(data)
    claims = [c for n in names if (c := claim(engine.home, n)) is not None]
    engine.process(claims)
    engine.publisher.rebuild_ledger(engine.store)
    expected = "".join(ledger_line(r) for r in engine.store.iter_requests())
    text = engine.publisher.ledger.read_text(encoding="utf-8")
    assert text.split("\n", 1)[1] == expected
    assert len(expected.splitlines()) == 4
    journal = "".join(journal_line(e) for e in engine.store.iter_events())
    assert engine.publisher.journal.read_text(encoding="utf-8").split("\n", 1)[1] == journal
    engine.publisher.rebuild_journal(engine.store)
    assert engine.publisher.journal.read_text(encoding="utf-8").split("\n", 1)[1] == journal


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "read-write"])
def test_ledger_update_patches_rows_like_a_rebuild(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool
) -> None:
    if not kernel_copy:
        monkeypatch.delattr(os, "copy_file_range")
    names = [f"r{i}.csr" for i in range(6)] + ['odd, "name"\x01.csr']
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(csr_for(cf_n(60 + i), key_n(30 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    ids = [r.id_operazione for r in engine.store.iter_requests()]
    changed = [ids[0], ids[3], ids[-1]]  # first, middle and last rows
    now = datetime.now(UTC)
    with engine.store.transaction() as txn:
        for id_op in changed:
            txn.cancel(id_op, now=now, motivazione="ALTRO", nota="prova", operatore="test")
    before = engine.publisher.ledger.read_bytes()
    engine.publisher.update_ledger(engine.store, changed)
    patched = engine.publisher.ledger.read_bytes()
    # The replaced file is freed later (after the receipts), and only then.
    replaced = engine.home.outbox / ".ledger.csv.replaced.tmp"
    assert replaced.read_bytes() == before
    engine.publisher.release_old_ledger()
    assert not replaced.exists()
    engine.publisher.rebuild_ledger(engine.store)
    assert patched == engine.publisher.ledger.read_bytes()
    assert patched.count(b"ANNULLATO") == 3


def test_ledger_update_puts_missing_rows_in_place(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows a failed batch never appended (here the first and a middle one, while a later
    row is in the file) are inserted where they belong, with a changed row patched, and
    no rebuild; a ledger that is not what certdesk writes is rebuilt."""
    names = [f"m{i}.csr" for i in range(4)]
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(csr_for(cf_n(80 + i), key_n(40 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    ledger = engine.publisher.ledger
    lines = ledger.read_text(encoding="utf-8").splitlines(keepends=True)
    ledger.write_text(lines[0] + lines[2] + lines[4], encoding="utf-8")  # rows 1 and 3 lost
    missing = [lines[1].split(",")[0], lines[3].split(",")[0]]
    changed = lines[2].split(",")[0]
    with engine.store.transaction() as txn:
        txn.cancel(changed, now=datetime.now(UTC), motivazione="ALTRO", nota="x", operatore="t")
    rebuilds: list[str] = []
    rebuild = engine.publisher.rebuild_ledger
    monkeypatch.setattr(engine.publisher, "rebuild_ledger", lambda store: rebuilds.append("!"))
    engine.publisher.update_ledger(engine.store, [*missing, changed])
    expected = "".join(ledger_line(r) for r in engine.store.iter_requests())
    assert ledger.read_text(encoding="utf-8") == lines[0] + expected
    assert rebuilds == []
    engine.publisher.update_ledger(engine.store, missing)  # present now: the same rows
    assert ledger.read_text(encoding="utf-8") == lines[0] + expected
    ledger.write_text(lines[0] + lines[1] + lines[2][:20], encoding="utf-8")  # torn
    engine.publisher.update_ledger(engine.store, missing)
    ledger.write_text(lines[1] + lines[2], encoding="utf-8")  # no header
    engine.publisher.update_ledger(engine.store, missing)
    assert rebuilds == ["!", "!"]
    monkeypatch.setattr(engine.publisher, "rebuild_ledger", rebuild)


def test_ledger_catch_up_after_a_crash_appends_only_the_missing_tail(engine: Engine) -> None:
    """A crash between a batch's commit and its append leaves out the last rows: they are
    appended (no rebuild); a ledger whose end cannot be shown whole and equal to the store
    is refused, so the caller rebuilds."""
    names = [f"t{i}.csr" for i in range(5)]
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(csr_for(cf_n(90 + i), key_n(50 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    ledger = engine.publisher.ledger
    whole = ledger.read_bytes()
    lines = whole.splitlines(keepends=True)
    assert len(lines) == 6

    def ledger_after(text: bytes) -> tuple[bool, bytes]:
        ledger.write_bytes(text)
        return engine.publisher.catch_up_ledger(engine.store), ledger.read_bytes()

    assert ledger_after(b"".join(lines[:4])) == (True, whole)  # the last two appended
    assert ledger_after(whole) == (True, whole)  # nothing missing: nothing appended
    assert ledger_after(lines[0]) == (True, whole)  # the header alone: every row
    assert ledger_after(b"".join(lines[:4]) + lines[4][:30])[0] is False  # torn last row
    altered = lines[3].replace(b"ATTIVATO", b"ANNULLATO")
    assert ledger_after(b"".join(lines[:3]) + altered)[0] is False  # not the store's row
    assert ledger_after(b"")[0] is False
    assert ledger_after(b"".join(lines[1:4]))[0] is False  # no header
    # A last row the CSV quotes (a name with a comma, quotes, a newline shown as \x0a).
    ledger.write_bytes(whole)
    (engine.home.inbox / 'a, "b"\nc.csr').write_bytes(csr_for(cf_n(99), key_n(59)))
    taken = claim(engine.home, 'a, "b"\nc.csr')
    assert taken is not None
    engine.process([taken])
    whole = ledger.read_bytes()
    assert whole.endswith(b',"a, ""b""\\x0ac.csr",gen1,\n')
    assert ledger_after(b"".join(whole.splitlines(keepends=True)[:-1])) == (True, whole)
    assert ledger_after(whole) == (True, whole)
