"""A fault of the machine is a pause, never a decision (issue 12, item 1).

Two kinds of test:
- on a real small file system (a tmpfs mounted by the test, as root; skipped with the
  reason where mounting is refused): the home is filled to several free-space margins
  while a lost-key annullamento and requests wait, then freed; every input is answered
  once, as it would have been, with the CRL and OCSP of the cancellation;
- fault injection into a daemon thread: a real SQLITE_FULL, an I/O error on read, the
  free-space reserve.

What counts as a fault of the machine is test_faults.py; the daemon's pause on a full disk
in the middle of a batch, test_daemon_failures.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from daemon_support import (
    DaemonProcess,
    ThreadDaemon,
    codice_fiscale,
    configure,
    heartbeat,
    make_csr,
    no_leaked_threads,
    receipts,
    wait_for,
    wait_receipt,
)

from certdesk.client import file_cancellation, receipt_path
from certdesk.faults import FULL_DISK
from conftest import drop, run_certdesk, sqlite_full

pytestmark = pytest.mark.usefixtures("passphrase_env")

PAGE = 4096
QUICK: dict[str, Any] = {
    "rescan_seconds": 0.2,
    "settle_seconds": 0.1,
    "heartbeat_seconds": 0.3,
    "pause_retry_seconds": 0.2,
    "min_free_bytes": 0,
}


# -- helpers -----------------------------------------------------------------------------
def _free(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def _fill(mount: Path, leave: int, name: str = "filler") -> Path:
    """A filler file that leaves about ``leave`` bytes (whole pages) free on ``mount``; none
    at all for 0. The daemon writes meanwhile (its heartbeat), so the space is taken in
    steps rather than measured once."""
    filler = mount / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _ in range(200):
            grow = (_free(mount) - leave) // PAGE * PAGE
            if grow <= 0:
                break
            try:
                os.posix_fallocate(fd, os.fstat(fd).st_size, grow)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if leave == 0:
                    break  # full
    finally:
        os.close(fd)
    return filler


def _ledger(home: Path) -> dict[str, dict[str, str]]:
    import csv

    with open(home / "outbox" / "ledger.csv", newline="", encoding="utf-8") as fh:
        return {row["IdOperazione"]: row for row in csv.DictReader(fh)}


def _serial(home: Path, id_op: str) -> int:
    pem = (home / "outbox" / "certs" / f"{id_op}.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem).serial_number


def _assert_revoked_for_key_compromise(home: Path, id_op: str) -> None:
    serial = _serial(home, id_op)
    crl = x509.load_der_x509_crl((home / "outbox" / "ca" / "issuing.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None, "the cancelled certificate is not in the CRL"
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    response = ocsp.load_der_ocsp_response(
        (home / "outbox" / "ocsp" / f"{serial:x}.der").read_bytes()
    )
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.key_compromise


# -- a real small file system ------------------------------------------------------------
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "certdesk-test", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _home_on(mount: Path, ca_template: Path, **daemon: float) -> Path:
    home = mount / "home"
    shutil.copytree(ca_template, home)
    configure(home, rescan_seconds=0.2, settle_seconds=0.1, **daemon)
    return home


def columnar_is_current(home: Path) -> bool:
    """outbox/ledger.parquet/ shows the store's last event (read from outside the daemon)."""
    try:
        manifest = json.loads((home / "outbox" / "ledger.parquet" / "_certdesk.json").read_text())
    except (OSError, ValueError):
        return False
    uri = f"file:{home / 'state' / 'certdesk.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        (last,) = conn.execute("SELECT MAX(seq) FROM events").fetchone()
    return bool(manifest.get("seq") == last)


def _daemon(home: Path, log: Path) -> DaemonProcess:
    process = DaemonProcess(home)
    process.log_path = log  # not on the small file system: the log must survive it
    return process


# Free space left when the inputs arrive, in bytes. 48-72 KiB is where the landed code
# committed an ERRORE_INTERNO refusal of a lost-key cancellation (the refusal record fit,
# the receipt did not); 0 and one page fail at the first write; the larger ones at the
# ledger, the CRL or not at all.
MARGINS = [0, PAGE, 48 * 1024, 56 * 1024, 64 * 1024, 72 * 1024, 128 * 1024, 512 * 1024]


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("margin", MARGINS, ids=[f"{m // 1024}KiB" for m in MARGINS])
def test_a_full_disk_pauses_and_every_input_is_answered_once_after(
    small_fs: Path, ca_template: Path, tmp_path: Path, margin: int
) -> None:
    home = _home_on(small_fs, ca_template, min_free_mib=0)
    person = codice_fiscale(700)
    requests = {f"during-{n}.csr": make_csr(701 + n) for n in range(3)}
    log = tmp_path / "daemon.log"
    with _daemon(home, log) as daemon:
        drop(home, "before.csr", make_csr(700))
        first = wait_receipt(home, "before.csr")
        assert first["esito"] == "OK"
        id_op = first["id_operazione"]
        wait_for(lambda: (home / "outbox" / "ocsp").exists(), 5)
        # the columnar ledger caught up (its rewrite frees the replaced part's blocks:
        # done after the disk is filled, it would leave room for the inputs)
        wait_for(lambda: columnar_is_current(home), 10)

        # The inputs are written beside the home first, then the disk is filled to the
        # margin, then they are renamed into inbox/ (a rename takes no space).
        staging = small_fs / "staging"
        name = file_cancellation(
            staging,
            codice_fiscale=person,
            id_operazione=[],
            motivazione="CHIAVE_SMARRITA",
            operatore="test",
            name="lost-key.json",
        ).name
        for request, data in requests.items():
            drop(staging, request, data)
        names = [name, *requests]
        filler = _fill(small_fs, margin)
        # A file the daemon was replacing as the disk filled (its heartbeat, a part of
        # ledger.parquet/) frees its old pages just after: those are taken too.
        time.sleep(0.5)
        top_up = _fill(small_fs, margin, name="filler-2")
        for n in names:
            os.rename(staging / "inbox" / n, home / "inbox" / n)

        def settled() -> bool:
            done = all(receipt_path(home, n).exists() for n in names)
            return done or heartbeat(home).get("state") == "paused"

        wait_for(settled, 30, "the inputs to be answered or the daemon to pause")
        was_paused = heartbeat(home).get("state") == "paused"
        for n in names:  # whatever was answered during the fault was answered right
            if receipt_path(home, n).exists():
                assert json.loads(receipt_path(home, n).read_text())["esito"] == "OK", n
        if margin == 0:
            assert was_paused, "no room for anything: the daemon must have paused"
        if was_paused:
            pausa = heartbeat(home)["pausa"]
            assert pausa["codice"] == FULL_DISK and pausa["messaggio"] and pausa["dal"]

        filler.unlink()  # space comes back
        top_up.unlink()
        got = {n: wait_receipt(home, n, timeout=30) for n in names}
        wait_for(lambda: heartbeat(home).get("state") == "running", 30, "the resume")
        assert daemon.stop() == 0

    assert {n: r["esito"] for n, r in got.items()} == dict.fromkeys(names, "OK")
    assert got[name]["id_operazione"] == [id_op]
    rows = _ledger(home)
    assert rows[id_op]["Stato"] == "ANNULLATO" and rows[id_op]["Motivazione"] == "CHIAVE_SMARRITA"
    assert len(rows) == 4 and all(r["Esito"] == "OK" for r in rows.values())
    _assert_revoked_for_key_compromise(home, id_op)
    # once: one receipt per input, one certificate per request, nothing left claimed
    assert sorted(receipts(home)) == sorted(f"{n}.json" for n in [*names, "before.csr"])
    assert len(list((home / "outbox" / "certs").glob("*.pem"))) == 4
    assert os.listdir(home / "state" / "work") == []
    text = log.read_text()
    assert "ERRORE_INTERNO" not in text and "Traceback" not in text
    assert text.count("paused:") <= 1
    if was_paused:
        assert text.count("resumed after") == 1
    run_certdesk(home, "verify-ledger")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_below_the_reserve_nothing_is_claimed_and_it_is_said_once(
    small_fs: Path, ca_template: Path, tmp_path: Path
) -> None:
    """With less free than the reserve, new files stay in inbox/ (not moved into
    state/work/), the heartbeat says why, the log says it once; freed, all are served."""
    home = _home_on(small_fs, ca_template, min_free_mib=4)
    log = tmp_path / "daemon.log"
    with _daemon(home, log) as daemon:
        filler = _fill(small_fs, 2 * 2**20)
        names = [f"waiting-{n}.csr" for n in range(3)]
        for n, name in enumerate(names):
            drop(home, name, make_csr(720 + n))
        wait_for(lambda: heartbeat(home).get("state") == "paused", 30, "the pause")
        pausa = heartbeat(home)["pausa"]
        assert pausa["codice"] == FULL_DISK and "reserve" in pausa["messaggio"]
        time.sleep(1.5)  # several retries
        assert sorted(os.listdir(home / "inbox")) == sorted(names)
        assert os.listdir(home / "state" / "work") == []
        assert not any(receipt_path(home, n).exists() for n in names)
        filler.unlink()
        got = [wait_receipt(home, n, timeout=20) for n in names]
        wait_for(lambda: heartbeat(home).get("state") == "running", 30, "the resume")
        assert heartbeat(home)["pausa"] is None
        assert daemon.stop() == 0
    assert [r["esito"] for r in got] == ["OK"] * 3
    text = log.read_text()
    assert text.count("paused:") == 1 and text.count("resumed after") == 1
    assert "Traceback" not in text


# -- fault injection in a daemon thread ----------------------------------------------------
@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with no_leaked_threads():
        yield


def test_sqlite_full_on_a_cancellation_commits_nothing_and_applies_it_after(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_FULL in the middle of an annullamento's transaction (the cancellation already
    written in it): nothing is committed, no receipt; once the store can write again the
    cancellation is applied, with its CRL and OCSP."""
    from certdesk.operations import cancelling

    cancel = cancelling._cancel
    faults: list[str] = []

    def full_once(parts: Any, txn: Any, document: Any, now: Any) -> list[str]:
        ids = cancel(parts, txn, document, now)
        if not faults:
            faults.append("SQLITE_FULL")
            raise sqlite_full()
        return ids

    monkeypatch.setattr(cancelling, "_cancel", full_once)
    person = codice_fiscale(730)
    with ThreadDaemon(home, **QUICK) as running:
        drop(home, "mine.csr", make_csr(730))
        id_op = wait_receipt(home, "mine.csr")["id_operazione"]
        file_cancellation(home, codice_fiscale=person, id_operazione=[],
                          motivazione="CHIAVE_SMARRITA", name="lost.json")  # fmt: skip
        answer = wait_receipt(home, "lost.json")
        assert faults == ["SQLITE_FULL"]
        assert running.daemon.heartbeat.counts["ko"] == 0
    assert answer["esito"] == "OK" and answer["id_operazione"] == [id_op]
    _assert_revoked_for_key_compromise(home, id_op)
    assert _ledger(home)[id_op]["Stato"] == "ANNULLATO"
    run_certdesk(home, "verify-ledger")


def test_an_io_error_reading_an_input_is_not_its_fault(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO while reading a request is the disk's fault: no INPUT_NON_LEGGIBILE refusal;
    the request is read again after the pause and accepted."""
    from certdesk import intake

    read = intake.read_claimed
    faults: list[str] = []

    def eio_once(home_: Any, item: Any) -> Any:
        if not faults:
            faults.append(item.name)
            raise OSError(errno.EIO, "Input/output error (injected)")
        return read(home_, item)

    monkeypatch.setattr(intake, "read_claimed", eio_once)
    with ThreadDaemon(home, **QUICK) as running:
        drop(home, "read-me.csr", make_csr(731))
        got = wait_receipt(home, "read-me.csr")
        wait_for(lambda: running.daemon.paused is None, 30, "the resume")  # after the receipt
    assert faults == ["read-me.csr"] and got["esito"] == "OK"


def test_the_reserve_keeps_files_in_the_inbox_until_space_returns(home: Path) -> None:
    with ThreadDaemon(home, **{**QUICK, "min_free_bytes": 2**62}) as running:
        drop(home, "patient.csr", make_csr(732))
        wait_for(lambda: running.daemon.paused is not None, 30, "the pause")
        time.sleep(0.6)  # three retries
        assert os.listdir(home / "inbox") == ["patient.csr"]
        assert running.daemon.paused.code == FULL_DISK  # type: ignore[union-attr]
        assert running.daemon.heartbeat.pause is not None
        daemon = running.daemon
        daemon._reserve = dataclasses.replace(daemon._reserve, min_free_bytes=0)
        assert wait_receipt(home, "patient.csr")["esito"] == "OK"
        wait_for(lambda: daemon.paused is None, 30, "the resume")
        assert daemon.heartbeat.pause is None


def test_watch_once_on_a_full_disk_exits_1_and_keeps_the_input(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(home, min_free_mib=2.0**40)  # a reserve no disk has
    drop(home, "kept.csr", make_csr(733))
    result = run_certdesk(home, "watch", "--once", "--workers", "1", check=False)
    assert result.returncode == 1
    assert "paused: SPAZIO_INSUFFICIENTE" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(home / "inbox") == ["kept.csr"]
    configure(home, min_free_mib=0)
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert json.loads(receipt_path(home, "kept.csr").read_text())["esito"] == "OK"
