"""The live daemon: real watchdog observers on real folders, a real engine and CA.

White-box tests run ``Daemon`` in a thread of the test process (so they can count its
scans and inject faults); the lock test runs two ``certdesk watch`` processes. Every test
fails if a thread it started (observer, emitter, inotify reader) is still alive after it.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (
    DaemonProcess,
    ThreadDaemon,
    make_csr,
    no_leaked_threads,
    receipt_path,
    receipts,
    wait_for,
    wait_receipt,
)
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

from certdesk.service import Engine
from conftest import assert_kept_privately, drop, run_certdesk

pytestmark = pytest.mark.usefixtures("passphrase_env")

QUICK: dict[str, Any] = {
    "rescan_seconds": 0.2,
    "settle_seconds": 0.2,
    "heartbeat_seconds": 0.5,
    "pause_retry_seconds": 0.2,
}


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with no_leaked_threads():
        yield


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@pytest.fixture
def daemon_log() -> Iterator[_Records]:
    """What the daemon logs (``certdesk`` may not propagate to the root logger)."""
    handler = _Records()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("certdesk")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(saved)


def _certificates(home: Path) -> list[Path]:
    return sorted((home / "outbox" / "certs").glob("*.pem"))


# -- 1. events wake the loop; scans decide ---------------------------------------------
def test_renamed_in_is_taken_at_once(home: Path, tmp_path: Path) -> None:
    """With a 30 s settle time only an event can make a file ready within seconds: a
    rename inside inbox/ and a move from another folder are both taken at once."""
    slow = {"rescan_seconds": 30, "settle_seconds": 30, "heartbeat_seconds": 30}
    with ThreadDaemon(home, **slow):
        drop(home, "inside.csr", make_csr(0))  # written as .inside.csr.tmp, renamed
        outside = tmp_path / "outside.csr"
        outside.write_bytes(make_csr(1))
        os.rename(outside, home / "inbox" / "outside.csr")
        assert wait_receipt(home, "inside.csr", timeout=10)["esito"] == "OK"
        assert wait_receipt(home, "outside.csr", timeout=10)["esito"] == "OK"


def test_written_in_place_waits_for_close_and_settle(home: Path) -> None:
    """A file still open for writing is never taken, however long the writer pauses;
    once closed (and stable for the settle time) it is taken whole."""
    data = make_csr(2)
    path = home / "inbox" / "in-place.csr"
    with ThreadDaemon(home, **QUICK) as running, open(path, "wb") as writer:
        writer.write(data[:200])
        writer.flush()
        started = time.monotonic()
        running.scans_after(8)  # eight rescans, well over the 0.2 s settle time
        assert time.monotonic() - started > 4 * QUICK["settle_seconds"]
        assert path.exists() and not receipt_path(home, "in-place.csr").exists()
        writer.write(data[200:])
        writer.close()
        receipt = wait_receipt(home, "in-place.csr")
    assert receipt["esito"] == "OK", receipt  # the whole request, not the first 200 bytes


def test_writers_names_are_ignored_until_renamed(home: Path) -> None:
    inbox = home / "inbox"
    for name in (".hidden.csr", "busy.csr.tmp", "busy.csr.part"):
        (inbox / name).write_bytes(make_csr(3))
    with ThreadDaemon(home, **QUICK) as running:
        running.scans_after(5)
        assert sorted(os.listdir(inbox)) == [".hidden.csr", "busy.csr.part", "busy.csr.tmp"]
        assert receipts(home) == {}
        os.rename(inbox / "busy.csr.part", inbox / "busy.csr")
        assert wait_receipt(home, "busy.csr")["esito"] == "OK"
        assert sorted(os.listdir(inbox)) == [".hidden.csr", "busy.csr.tmp"]


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_backlog_then_live_drops(home: Path, polling: bool) -> None:
    """Files dropped while the daemon was down are served at start; files dropped while
    it runs (renamed in, or written in place) are served too, with either observer."""
    for n in range(5):
        drop(home, f"backlog-{n}.csr", make_csr(10 + n))
    with ThreadDaemon(home, polling=polling, **QUICK) as running:
        assert running.daemon.observer is not None
        expected = "PollingObserver" if polling else "InotifyObserver"
        assert type(running.daemon.observer).__name__ == expected
        for n in range(5):
            assert wait_receipt(home, f"backlog-{n}.csr")["esito"] == "OK"
        drop(home, "live.csr", make_csr(20))
        (home / "inbox" / "in-place.csr").write_bytes(make_csr(21))
        assert wait_receipt(home, "live.csr")["esito"] == "OK"
        assert wait_receipt(home, "in-place.csr")["esito"] == "OK"
    assert len(_certificates(home)) == 7


def test_rescan_at_once_after_inotify_queue_overflow(home: Path, tmp_path: Path) -> None:
    """An overflow loses events: the daemon rescans at once instead of at the next
    periodic rescan (here an hour away). The file is dropped while the watch is off, so
    no event can announce it; then the kernel's IN_Q_OVERFLOW record is fed to the
    observer's real inotify reader, which reports it as watchdog 7 does."""
    hour = {"rescan_seconds": 3600, "heartbeat_seconds": 3600, "settle_seconds": 0.2}
    with ThreadDaemon(home, **hour) as running:
        observer = running.daemon.observer
        assert observer is not None
        observer.unschedule_all()  # from now on, no event reaches the daemon
        aside = tmp_path / "unannounced.csr"
        aside.write_bytes(make_csr(30))
        os.utime(aside, (time.time() - 60, time.time() - 60))  # stable for a minute
        os.rename(aside, home / "inbox" / "unannounced.csr")
        scans = running.daemon.scans
        assert not receipt_path(home, "unannounced.csr").exists()

        inotify_fd = observer._inotify_fd  # type: ignore[attr-defined]  # watchdog internals
        inotify_fd.handle_event(InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b""))

        assert wait_receipt(home, "unannounced.csr", timeout=10)["esito"] == "OK"
        assert running.daemon.scans > scans
        assert running.daemon._wakeup.overflows == 1


def test_periodic_rescan_finds_what_no_event_announced(home: Path) -> None:
    """Events are only hints: with the watch gone, the periodic rescan still finds files."""
    timing = {"rescan_seconds": 0.3, "heartbeat_seconds": 30, "settle_seconds": 0.2}
    with ThreadDaemon(home, **timing) as running:
        observer = running.daemon.observer
        assert observer is not None
        observer.unschedule_all()
        drop(home, "unwatched.csr", make_csr(32))
        assert wait_receipt(home, "unwatched.csr", timeout=10)["esito"] == "OK"
        assert running.daemon._wakeup.overflows == 0


@pytest.mark.parametrize("folder", ["inbox", "outbox"])
def test_a_replaced_folder_stops_the_daemon(home: Path, tmp_path: Path, folder: str) -> None:
    """inbox/ (or outbox/) renamed away under a live daemon and a symlink to someone
    else's folder put in its place: the daemon takes nothing from that folder, writes
    nothing into it, and stops with CARTELLA_SOSTITUITA (exit 1), not a traceback."""
    other = tmp_path / "someone-else"
    other.mkdir()
    (other / "private.csr").write_bytes(make_csr(32))
    (other / "notes.txt").write_text("not for certdesk")
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    with DaemonProcess(home, "--rescan-seconds", "0.2") as daemon:
        os.rename(home / folder, home / f"{folder}-old")
        os.symlink(other, home / folder)
        assert daemon.wait(15) == 1
        log = daemon.log()
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    assert "CARTELLA_SOSTITUITA" in log and f"{folder}/" in log and "Traceback" not in log
    for folder in ("work", "archive", "quarantine"):
        assert os.listdir(home / "state" / folder) == []


# -- 1. an exception on one file never stops the daemon --------------------------------
def _inject_bug_for(monkeypatch: pytest.MonkeyPatch, doomed: str) -> None:
    """Make the issuing rule raise (a stand-in for any bug) on requests for ``doomed`` only."""
    from certdesk.operations import deciding

    decide = deciding.decide_request

    def buggy(codice_fiscale: str, **facts: Any) -> Any:
        if codice_fiscale == doomed:
            raise RuntimeError("an injected bug")
        return decide(codice_fiscale, **facts)

    monkeypatch.setattr(deciding, "decide_request", buggy)


def test_a_bug_on_one_input_gives_errore_interno_and_quarantine(
    home: Path, monkeypatch: pytest.MonkeyPatch, daemon_log: _Records
) -> None:
    """A bug that hits one input fails its whole batch: the batch is retried one input
    at a time; the input that fails again alone gets ERRORE_INTERNO and is quarantined
    (0600); the others are served; the observer and the daemon keep running."""
    from daemon_support import codice_fiscale

    doomed = codice_fiscale(41)
    _inject_bug_for(monkeypatch, doomed)
    for n, name in ((40, "first.csr"), (41, "doomed.csr"), (42, "third.csr")):
        drop(home, name, make_csr(n))
    with ThreadDaemon(home, **QUICK) as running:
        doomed_receipt = wait_receipt(home, "doomed.csr")
        assert wait_receipt(home, "first.csr")["esito"] == "OK"
        assert wait_receipt(home, "third.csr")["esito"] == "OK"
        assert running.daemon.observer is not None and running.daemon.observer.is_alive()
        drop(home, "later.csr", make_csr(43))
        assert wait_receipt(home, "later.csr")["esito"] == "OK"
        assert running.daemon.heartbeat.counts["errore_interno"] == 1
    assert doomed_receipt["esito"] == "KO"
    assert [e["codice"] for e in doomed_receipt["errori"]] == ["ERRORE_INTERNO"]
    assert "injected bug" not in doomed_receipt["errori"][0]["messaggio"]
    kept = list((home / "state" / "quarantine").glob("*/doomed.csr"))
    assert len(kept) == 1
    assert_kept_privately(kept[0])
    assert kept[0].read_bytes() == make_csr(41)
    assert len(_certificates(home)) == 3
    assert os.listdir(home / "inbox") == [] and os.listdir(home / "state" / "work") == []
    log = daemon_log.text()
    assert "retrying them one by one" in log and "failed again, alone" in log
    run_certdesk(home, "verify-ledger")


def test_a_crash_leftover_that_fails_does_not_stop_the_start(
    home: Path, monkeypatch: pytest.MonkeyPatch, daemon_log: _Records
) -> None:
    """Inputs claimed but never recorded (a kill -9 right after the rename) are processed
    at start; one that makes recovery fail is refused alone, and the daemon starts."""
    from daemon_support import codice_fiscale

    from certdesk.home import Home
    from certdesk.intake import claim

    doomed = codice_fiscale(44)
    _inject_bug_for(monkeypatch, doomed)
    for n, name in ((44, "left-doomed.csr"), (45, "left-fine.csr")):
        drop(home, name, make_csr(n))
        assert claim(Home.at(home), name) is not None
    with ThreadDaemon(home, **QUICK) as running:
        assert wait_receipt(home, "left-fine.csr")["esito"] == "OK"
        refused = wait_receipt(home, "left-doomed.csr")
        drop(home, "after-start.csr", make_csr(46))
        assert wait_receipt(home, "after-start.csr")["esito"] == "OK"
        assert not running.daemon._recovery_due
    assert [e["codice"] for e in refused["errori"]] == ["ERRORE_INTERNO"]
    assert os.listdir(home / "state" / "work") == []
    assert "recovery failed" in daemon_log.text()
    run_certdesk(home, "verify-ledger")


def test_a_transient_failure_is_retried_without_refusing(
    home: Path, monkeypatch: pytest.MonkeyPatch, daemon_log: _Records
) -> None:
    """A full disk after the batch was committed and its receipts written, when the first
    input is archived: the daemon pauses, and its resume finishes the batch from the store
    (the crash-recovery path): every request is served, once, with no ERRORE_INTERNO."""
    from certdesk.operations import issuing

    settle_claim = issuing.settle_claim
    failures: list[str] = []

    def disk_full_once(home: Any, item: Any, *, quarantined: bool) -> None:
        if not failures:
            failures.append(item.name)
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        settle_claim(home, item, quarantined=quarantined)

    monkeypatch.setattr(issuing, "settle_claim", disk_full_once)
    names = [f"batch-{n}.csr" for n in range(4)]
    for n, name in enumerate(names):
        drop(home, name, make_csr(50 + n))
    with ThreadDaemon(home, **QUICK):
        got = [wait_receipt(home, name) for name in names]
        wait_for(lambda: not os.listdir(home / "state" / "work"), 10, "the archive")
    assert len(failures) == 1
    assert [r["esito"] for r in got] == ["OK"] * 4
    assert len({r["id_operazione"] for r in got}) == 4
    assert len(_certificates(home)) == 4
    assert len(list((home / "state" / "archive").iterdir())) == 4
    log = daemon_log.text()
    assert "paused: SPAZIO_INSUFFICIENTE" in log and "resumed after" in log
    assert "ERRORE_INTERNO" not in log and "retrying them one by one" not in log
    assert sum(" esito=OK" in line for line in log.splitlines()) == 4  # one line each
    run_certdesk(home, "verify-ledger")


def test_a_batch_that_failed_before_its_ledger_rows_is_finished_without_a_rebuild(
    home: Path, monkeypatch: pytest.MonkeyPatch, daemon_log: _Records
) -> None:
    """A full disk when a batch appends its ledger rows (after its commit): the daemon
    pauses, and its resume puts the rows in ledger.csv from the store, without rewriting
    the whole file (seconds at a million rows); later requests are appended after them."""
    from certdesk import publish

    append = publish.append_unsynced
    failures: list[str] = []

    def disk_full_once(path: Any, data: bytes) -> bool:
        if str(path).endswith("ledger.csv") and not failures:
            failures.append(str(path))
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return append(path, data)

    names = [f"row-{n}.csr" for n in range(3)]
    with ThreadDaemon(home, **QUICK):
        drop(home, "first.csr", make_csr(60))  # the ledger exists before the failure
        assert wait_receipt(home, "first.csr")["esito"] == "OK"
        rebuilds: list[str] = []
        monkeypatch.setattr(publish, "append_unsynced", disk_full_once)
        monkeypatch.setattr(
            publish.Publisher, "rebuild_ledger", lambda self, store: rebuilds.append("!")
        )
        for n, name in enumerate(names):
            drop(home, name, make_csr(61 + n))
        got = [wait_receipt(home, name) for name in names]
        drop(home, "later.csr", make_csr(65))
        assert wait_receipt(home, "later.csr")["esito"] == "OK"
    assert len(failures) == 1 and rebuilds == []
    assert [r["esito"] for r in got] == ["OK"] * 3
    assert "paused: SPAZIO_INSUFFICIENTE" in daemon_log.text()
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["FileOrigine"] for r in rows] == ["first.csr", *names, "later.csr"]
    run_certdesk(home, "verify-ledger")


# -- 3. exactly once -----------------------------------------------------------------
def test_byte_identical_request_is_an_idempotent_retry(home: Path) -> None:
    data = make_csr(60)
    drop(home, "same-batch-a.csr", data)
    drop(home, "same-batch-b.csr", data)
    with ThreadDaemon(home, **QUICK):
        a = wait_receipt(home, "same-batch-a.csr")
        b = wait_receipt(home, "same-batch-b.csr")
        drop(home, "next-day.csr", data)
        c = wait_receipt(home, "next-day.csr")
    assert a["esito"] == b["esito"] == c["esito"] == "OK"
    assert a["id_operazione"] == b["id_operazione"] == c["id_operazione"]
    assert [r.get("ripetizione") for r in (a, b, c)] == [None, True, True]
    assert len(_certificates(home)) == 1
    ledger = (home / "outbox" / "ledger.csv").read_text().splitlines()
    assert len(ledger) == 2  # the header and one request


def test_a_second_daemon_on_the_same_home_refuses(home: Path) -> None:
    with DaemonProcess(home) as first:
        for args in (["watch"], ["watch", "--once"]):
            second = run_certdesk(home, *args, "--workers", "1", check=False, timeout=60)
            assert second.returncode != 0
            assert "Traceback" not in second.stderr
            errors = [line for line in second.stderr.splitlines() if "DAEMON_GIA_ATTIVO" in line]
            assert len(errors) == 1, second.stderr
            assert f"pid {first.pid}" in errors[0] and "già attivo" in errors[0]
            assert second.stderr.rstrip().splitlines()[-1] == errors[0]
        assert first.proc is not None and first.proc.poll() is None  # undisturbed
        assert first.stop() == 0
    # The lock went with the first daemon: a new one starts.
    assert run_certdesk(home, "watch", "--once", "--workers", "1").returncode == 0


# -- idle work ---------------------------------------------------------------------------
def test_endless_idle_work_never_holds_up_a_drop(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OCSP pre-signing runs in short slices between looks at inbox/: even when it never
    runs out (a store of a million certificates without responses), a drop is served,
    and the idle work resumes after it."""
    slices: list[float] = []

    def endless(self: Engine, *, ahead: bool = True) -> int:
        slices.append(time.monotonic())
        time.sleep(0.01)
        return 1

    monkeypatch.setattr(Engine, "idle_work", endless)
    with ThreadDaemon(home, **QUICK):
        wait_for(lambda: len(slices) > 5, 10, "idle work")
        drop(home, "during.csr", make_csr(44))
        assert wait_receipt(home, "during.csr", timeout=10)["esito"] == "OK"
        served = len(slices)
        wait_for(lambda: len(slices) > served + 5, 10, "idle work to resume")
