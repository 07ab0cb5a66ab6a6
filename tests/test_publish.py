"""Publishing the outbox (``publish.py``): ledger and journal in the contract's shape, and a
batch's files renamed into place in the contract's order (certificates, then receipts)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from certdesk import fsutil
from certdesk.home import Home
from certdesk.intake import Claim
from certdesk.publish import Publisher
from certdesk.records import JOURNAL_COLUMNS, LEDGER_COLUMNS
from certdesk.store import Store
from conftest import CsrFactory, issue, ledger_rows, run_certdesk


def test_ledger_and_journal_follow_the_contract(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": b"junk"})
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == LEDGER_COLUMNS
    with open(home / "outbox" / "journal.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == JOURNAL_COLUMNS
    transitions = [(r[3], r[4]) for r in rows[1:]]
    assert sorted(transitions) == [
        ("", "IN_GENERAZIONE"), ("", "RIFIUTATO"), ("IN_GENERAZIONE", "ATTIVATO"),
    ]  # fmt: skip
    row = ledger_rows(home)[0]
    assert row["Stato"] == "ATTIVATO"
    assert row["DataRichiesta"].endswith("Z") and row["DataScadenza"].endswith("Z")
    assert row["Seriale"] == row["Seriale"].lower()
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_publish_batch_renames_receipts_after_certificates(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = Home.at(home)
    publisher = Publisher(where)
    publisher.ensure_layout()
    store = Store(where.database)
    events: list[str] = []
    real_sync, real_replace = fsutil.sync_data, os.replace

    def sync(paths: object) -> None:
        events.append("sync")
        real_sync(paths)  # type: ignore[arg-type]

    def replace(src: str, dst: str) -> None:
        events.append(os.path.basename(os.path.dirname(dst)))
        real_replace(src, dst)

    monkeypatch.setattr("certdesk.publish.sync_data", sync)
    monkeypatch.setattr(fsutil.os, "replace", replace)
    try:
        publisher.publish_batch(
            store,
            certificates=[
                ("20260101-000000001", b"pem 1", ""), ("20260101-000000002", b"pem 2", "")
            ],
            ledger=[],
            receipts=[
                (Claim("c1", "a.csr"), {"esito": "OK"}), (Claim("c2", "b.csr"), {"esito": "KO"})
            ],
        )
    finally:
        store.close()
    assert events == ["sync", "certs", "certs", "receipts", "receipts"]
    assert json.loads((where.outbox / "receipts" / "b.csr.json").read_text()) == {"esito": "KO"}
    leftovers = [p for p in where.outbox.rglob(".*.tmp")]
    assert leftovers == []
