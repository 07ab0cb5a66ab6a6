"""The daemon's loop (``daemon/watcher.py``, ``events.py``, ``readiness.py``): real watchdog
observers on real folders wake it, scans of inbox/ decide what is ready, and idle work never
holds up a drop.

The daemon runs in a thread of the test process (``ThreadDaemon``, a real engine and CA),
so a test can count its scans. Every test fails if a thread it started (observer, emitter,
inotify reader) is still alive after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from daemon_support import (
    QUICK,
    ThreadDaemon,
    certificates,
    make_csr,
    receipt_path,
    receipts,
    wait_for,
    wait_receipt,
)
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

from certdesk.service import Engine
from conftest import drop

pytestmark = pytest.mark.usefixtures("passphrase_env", "no_thread_leaks")


# -- events wake the loop; scans decide ----------------------------------------------------
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
    assert len(certificates(home)) == 7


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


def test_a_stop_just_before_the_step_clears_its_wakeup_is_not_lost(home: Path) -> None:
    """SIGTERM between the loop's look at the stop flag and the step's clear() of the
    wake-up event: the daemon stopped only after a whole rescan period (an hour here; CI
    met it once, a thread that would not stop)."""
    hour = {"rescan_seconds": 3600, "heartbeat_seconds": 3600, "settle_seconds": 0.2}
    with ThreadDaemon(home, **hour) as running:
        daemon = running.daemon
        daemon._upkeep.idle_work = lambda: False  # type: ignore[method-assign]  # no detour
        event = daemon._wakeup.event
        clear = event.clear

        def stop_then_clear() -> None:
            daemon.stop()  # as the signal handler would, at the worst moment
            clear()

        event.clear = stop_then_clear  # type: ignore[method-assign]
        event.set()  # wake the loop: its next step clears the event after the stop
        running.thread.join(10)
        assert not running.thread.is_alive(), "the stop was lost: the daemon sleeps on"


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


# -- idle work -----------------------------------------------------------------------------
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
        wait_for(lambda: len(slices) > 5, 30, "idle work")
        drop(home, "during.csr", make_csr(44))
        assert wait_receipt(home, "during.csr", timeout=10)["esito"] == "OK"
        served = len(slices)
        wait_for(lambda: len(slices) > served + 5, 30, "idle work to resume")
