"""Recovery (``operations/recovery.py``): after a crash, what was committed is finished from
the store alone: the ledger rebuilt only when it may be stale, a serial reserved for a
request recorded without one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from engine_support import cf_n, csr_for, key_n

from certdesk.service import Engine
from conftest import CsrFactory, issue, ledger_rows, run_certdesk


def test_restart_rebuilds_the_ledger_only_when_it_may_be_stale(
    home: Path, csrs: CsrFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean start leaves ledger.csv alone (a rebuild costs seconds at a million rows);
    a state change committed without its ledger update (a crash in between) is repaired."""
    from certdesk.clock import now_utc
    from certdesk.home import Home
    from certdesk.store import Store
    from conftest import PASSPHRASE

    issue(home, csrs, {"a.csr": csrs.csr()})
    ledger = home / "outbox" / "ledger.csv"
    inode = ledger.stat().st_ino
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert ledger.stat().st_ino == inode  # not rewritten

    id_op = ledger_rows(home)[0]["IdOperazione"]
    store = Store(Home.at(home).database)
    try:
        with store.transaction() as txn:  # what a kill right after this commit leaves
            txn.cancel(id_op, now=now_utc(), motivazione="ALTRO", nota="n", operatore="t")
    finally:
        store.close()
    assert ledger_rows(home)[0]["Stato"] == "ATTIVATO"
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert ledger_rows(home)[0]["Stato"] == "ANNULLATO"
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_recovery_reserves_a_serial_for_a_row_recorded_without_one(engine: Engine) -> None:
    """A request left IN_GENERAZIONE by a version that did not reserve serials is given
    one (committed) before it is signed, and its certificate carries it."""
    from certdesk.states import Stato

    der = x509.load_pem_x509_csr(csr_for(cf_n(97), key_n(57))).public_bytes(
        serialization.Encoding.DER
    )
    now = datetime.now(UTC)
    with engine.store.transaction() as txn:
        id_op = txn.record_new(
            stato=Stato.IN_GENERAZIONE, now=now, codice_fiscale=cf_n(97), profilo="PF",
            esito="", file_origine="legacy.csr", claim="legacy-claim", input_sha256="ab" * 32,
            spki_sha256="cd" * 32, csr_der=der,
        )  # fmt: skip
    assert engine.store.get(id_op).seriale == ""  # type: ignore[union-attr]
    engine.finish_interrupted()
    record = engine.store.get(id_op)
    assert record is not None and record.stato is Stato.ATTIVATO and record.seriale
    cert = x509.load_pem_x509_certificate(
        engine.publisher.certificate_path(id_op).read_bytes()
    )
    assert format(cert.serial_number, "x") == record.seriale
    assert cert.not_valid_after_utc == record.data_scadenza
