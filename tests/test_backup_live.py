"""A backup taken while a live daemon issues a backlog and cancellations are filed
(issue 17, part 6): restored into a new home it is the same CA (verify-ledger intact,
every request the backup knew present with its state and certificate), a surviving
journal.csv names the requests the backup lost, and the restored daemon issues on
without reusing an IdOperazione or a serial."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from daemon_support import DaemonProcess, certificates, codice_fiscale, make_csr, wait_for
from daemon_support import receipts as all_receipts

from conftest import drop, ledger_rows, run_certdesk

PEOPLE, REQUESTS, LATE = 30, 300, 40  # a person a key, ten requests each; then 40 more


def _snapshot_requests(backup: Path) -> dict[str, tuple[str, str]]:
    uri = f"file:{backup / 'state' / 'certdesk.sqlite3'}?immutable=1"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("SELECT id_operazione, stato, COALESCE(seriale, '') FROM requests")
        return {r[0]: (r[1], r[2]) for r in rows}
    finally:
        conn.close()


def _journal_ids(path: Path) -> set[str]:
    with open(path, newline="") as fh:
        return {row["IdOperazione"] for row in csv.DictReader(fh)}


def test_backup_under_load_restores_the_same_ca_and_issuing_goes_on(
    tmp_path: Path, home: Path
) -> None:
    first = REQUESTS // 2
    with DaemonProcess(home, workers=2) as daemon:
        for n in range(first):
            drop(home, f"load{n:03d}.csr", make_csr(n % PEOPLE, n // PEOPLE))
        # cancellations filed while the backlog is issued: the first of three people
        wait_for(lambda: len(certificates(home)) >= 40, 120, "the first certificates")
        for person in range(3):
            run_certdesk(home, "cancel", "--codice-fiscale", codice_fiscale(person),
                         "--motivazione", "CHIAVE_SMARRITA")  # fmt: skip
        # the rest of the backlog once a cancellation is applied (the daemon may take
        # them after the requests dropped before), and the backup while it is issued
        wait_for(lambda: any(r["Stato"] == "ANNULLATO" for r in ledger_rows(home)), 180,
                 "a cancellation applied")  # fmt: skip
        for n in range(first, REQUESTS):
            drop(home, f"load{n:03d}.csr", make_csr(n % PEOPLE, n // PEOPLE))
        issued = len(certificates(home))
        wait_for(lambda: len(certificates(home)) >= issued + 20, 180, "more certificates")
        backup = tmp_path / "backup"
        run_certdesk(home, "backup", str(backup))  # mid-backlog, the daemon issuing
        for n in range(LATE):  # accepted after the backup: lost with the disk
            drop(home, f"late{n:02d}.csr", make_csr(PEOPLE + n))
        wait_for(lambda: len(all_receipts(home)) >= REQUESTS + LATE + 3, 300, "every receipt")
        daemon.stop()
    run_certdesk(home, "verify-ledger")
    assert "intact" in run_certdesk(home, "backup", str(backup), "--verify").stdout
    known = _snapshot_requests(backup)
    final = {r["IdOperazione"]: r for r in ledger_rows(home)}
    assert 0 < len(known) < len(final), "the backup was taken mid-backlog"
    assert any(state == "ANNULLATO" for state, _ in known.values())

    # restored without a witness: the same CA, every request it knew with its state
    new = tmp_path / "restored"
    run_certdesk(new, "restore", str(backup))
    assert "intact" in run_certdesk(new, "verify-ledger").stdout
    restored = {r["IdOperazione"]: r for r in ledger_rows(new)}
    settled = {k: v for k, v in known.items() if v[0] != "IN_GENERAZIONE"}
    assert set(restored) == set(known)
    for id_op, row in restored.items():
        if id_op not in settled:  # caught half-way: signed by the restore, a new serial
            assert row["Stato"] == "ATTIVATO" and row["Seriale"] != known[id_op][1]
            continue
        assert (row["Stato"], row["Seriale"]) == known[id_op]
        if row["Stato"] in ("ATTIVATO", "ANNULLATO"):
            assert (new / "outbox" / "certs" / f"{id_op}.pem").read_bytes() == (
                home / "outbox" / "certs" / f"{id_op}.pem"
            ).read_bytes()
    # the surviving journal names what the backup lost, one line, exit 1
    witness = home / "outbox" / "journal.csv"
    lost = run_certdesk(new, "verify-ledger", "--witness", str(witness), check=False)
    assert lost.returncode == 1 and lost.stderr.startswith("certdesk: RICHIESTE_PERSE: ")
    missing = set(final) - set(known)
    assert missing and all(id_op in lost.stderr for id_op in missing)

    # restored with the witness: issuing goes on past everything the old CA handed out
    again = tmp_path / "again"
    run_certdesk(again, "restore", str(backup), "--witness", str(witness))
    old_ids = _journal_ids(witness)
    old_serials = {r["Seriale"] for r in final.values() if r["Seriale"]}
    with DaemonProcess(again, workers=1):
        for n in range(20):
            drop(again, f"after{n}.csr", make_csr(PEOPLE + LATE + n))
        wait_for(lambda: sum(1 for name in all_receipts(again) if name.startswith("after")) == 20,
                 120, "the new receipts")  # fmt: skip
    after = {r["IdOperazione"]: r for r in ledger_rows(again)}
    fresh = {i for i, r in after.items() if r["FileOrigine"].startswith("after")}
    assert len(fresh) == 20 and not fresh & old_ids and min(fresh) > max(old_ids)
    signed_after = set(after) - set(settled)  # the 20, and those caught IN_GENERAZIONE
    assert all(after[i]["Stato"] == "ATTIVATO" for i in signed_after)
    assert not {after[i]["Seriale"] for i in signed_after} & old_serials
    assert "intact" in run_certdesk(again, "verify-ledger").stdout
    still = run_certdesk(again, "verify-ledger", "--witness", str(witness), check=False)
    assert still.returncode == 1 and all(id_op in still.stderr for id_op in missing)
