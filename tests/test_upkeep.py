"""Upkeep (``operations/upkeep.py``): expiry (SCADUTO, out of the CRL), the CRL's entries
built ahead in idle slices, and ``certdesk republish``."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from certdesk.clock import now_utc
from conftest import (
    COMPANY,
    OTHER,
    PASSPHRASE,
    PERSON,
    CsrFactory,
    cancel,
    codes,
    crl,
    issue,
    ledger_by_id,
    openssl_verify_crl,
    run_certdesk,
    serial,
)


def test_expiry_moves_to_scaduto_and_leaves_the_crl(
    home: Path, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from certdesk.home import Home
    from certdesk.runtime import open_engine

    assert cancel(home, COMPANY, motivazione="ATTIVITA_CESSATA")["esito"] == "OK"
    assert len(crl(home)) == 1
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    later = now_utc() + timedelta(days=4000)
    engine = open_engine(Home.at(home), workers=1, clock=lambda: later)
    try:
        assert engine.sweep_expired() == 4  # the four still ATTIVATO
    finally:
        engine.close()
    rows = ledger_by_id(home)
    assert {rows[issued[n]]["Stato"] for n in ("p0", "p1", "p2", "o")} == {"SCADUTO"}
    assert rows[issued["c"]]["Stato"] == "ANNULLATO"
    assert len(crl(home)) == 0  # an expired certificate leaves the CRL
    assert run_certdesk(home, "verify-ledger").returncode == 0
    expired = cancel(home, PERSON, issued["p0"])
    assert codes(expired) == ["STATO_NON_ANNULLABILE"]


def test_a_started_daemon_builds_the_crl_entries_ahead(
    home: Path, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a start, idle slices build the CRL's entries (here one per slice, read in
    order across slices), so the next cancellation builds only its own entry and the CRL
    still lists every cancelled certificate."""
    from certdesk.client import file_cancellation
    from certdesk.home import Home
    from certdesk.intake import claim
    from certdesk.runtime import open_engine

    for name in ("p0", "o"):
        who = PERSON if name == "p0" else OTHER
        assert cancel(home, who, issued[name], motivazione="ATTIVITA_CESSATA")["esito"] == "OK"
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    from certdesk.operations import upkeep

    monkeypatch.setattr(upkeep, "_CRL_ENTRIES_SLICE", 1)
    engine = open_engine(Home.at(home), workers=1)
    try:
        entries = engine.revocation._entries_of("gen1")  # the first issuer's CRL
        assert engine.idle_work(ahead=False) == 0 and len(entries) == 0  # --once: not ahead
        slices = 0
        while engine.idle_work():
            slices += 1
        # p0 was PERSON's first cancellation: cumulative, so p1 and p2 too.
        assert slices == 4 and len(entries) == 4 and entries.complete
        built = dict(entries._built)
        path = file_cancellation(home, codice_fiscale=COMPANY, id_operazione=[issued["c"]],
                                 motivazione="FURTO_CERTIFICATO")  # fmt: skip
        taken = claim(Home.at(home), path.name)
        assert taken is not None
        [outcome] = engine.process([taken])
        assert outcome.esito == "OK"
        assert all(entries._built[s] is e for s, e in built.items())  # reused, not rebuilt
    finally:
        engine.close()
    listed = {r.serial_number for r in crl(home)}
    assert listed == {serial(home, issued[n]) for n in ("p0", "p1", "p2", "o", "c")}
    assert openssl_verify_crl(home, issued["c"]).returncode != 0


def test_republish_rebuilds_the_outbox_byte_for_byte(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": csrs.csr(f"/CN={COMPANY}"), "c.csr": b"x"})
    outbox = home / "outbox"
    kept = ("certs", "receipts")
    before = {
        p.relative_to(outbox): p.read_bytes()
        for p in outbox.rglob("*")
        if p.is_file() and (p.parts[-2] in kept or p.name in ("ledger.csv", "journal.csv"))
    }
    for path in outbox.rglob("*"):
        if path.is_file():
            path.unlink()
    run_certdesk(home, "republish")
    after = {rel: (outbox / rel).read_bytes() for rel in before}
    assert after == before
    assert (outbox / "ca" / "chain.pem").exists() and (outbox / "ca" / "issuing.crl").exists()
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_republish_waits_for_no_daemon(home: Path, csrs: CsrFactory) -> None:
    """outbox/ has one writer: republish refuses while a daemon holds the home's lock."""
    issue(home, csrs, {"a.csr": csrs.csr()})
    ledger = (home / "outbox" / "ledger.csv").read_bytes()
    holder = subprocess.Popen(  # a stand-in daemon: another process holding the lock
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from certdesk.daemon.lock import DaemonLock; from certdesk.home import Home; "
         "DaemonLock(Home(Path(sys.argv[1])).lock_file).acquire(); print('held', flush=True); "
         "time.sleep(60)", str(home)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = run_certdesk(home, "republish", check=False)
        assert refused.returncode != 0
        assert "DAEMON_GIA_ATTIVO" in refused.stderr and str(holder.pid) in refused.stderr
        assert "Traceback" not in refused.stderr
        assert (home / "outbox" / "ledger.csv").read_bytes() == ledger
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert run_certdesk(home, "republish").returncode == 0
