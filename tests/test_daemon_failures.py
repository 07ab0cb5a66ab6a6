"""A failure never stops the daemon (``daemon/watcher.py``): a bug on one input refuses that
input alone (ERRORE_INTERNO, quarantined), at start too; a fault of the machine (a full
disk) pauses it, and the resume finishes the batch from the store.

The daemon runs in a thread of the test process, with faults injected. Every test fails if
a thread it started is still alive after it.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from archive_support import assert_packs_private, kept_by_name
from daemon_support import QUICK, ThreadDaemon, certificates, make_csr, wait_for, wait_receipt

from conftest import drop, run_certdesk

pytestmark = pytest.mark.usefixtures("passphrase_env", "no_thread_leaks")


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


# -- a bug on one input --------------------------------------------------------------------
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
    kept = kept_by_name(home)["doomed.csr"]
    assert kept.quarantined and kept.packed and kept.data == make_csr(41)
    assert_packs_private(home)
    assert len(certificates(home)) == 3
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


# -- a fault of the machine ----------------------------------------------------------------
def test_a_transient_failure_is_retried_without_refusing(
    home: Path, monkeypatch: pytest.MonkeyPatch, daemon_log: _Records
) -> None:
    """A full disk after the batch was committed and its receipts written, when the first
    input is archived: the daemon pauses, and its resume finishes the batch from the store
    (the crash-recovery path): every request is served, once, with no ERRORE_INTERNO."""

    from certdesk import archive

    pwrite_whole = archive._pwrite_whole
    failures: list[int] = []

    def disk_full_once(fd: int, data: bytes, offset: int) -> None:
        if not failures:
            failures.append(offset)
            pwrite_whole(fd, data[: len(data) // 2], offset)  # a torn append
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        pwrite_whole(fd, data, offset)

    monkeypatch.setattr(archive, "_pwrite_whole", disk_full_once)
    names = [f"batch-{n}.csr" for n in range(4)]
    for n, name in enumerate(names):
        drop(home, name, make_csr(50 + n))
    with ThreadDaemon(home, **QUICK):
        got = [wait_receipt(home, name) for name in names]
        wait_for(lambda: not os.listdir(home / "state" / "work"), 30, "the archive")
    assert len(failures) == 1
    assert [r["esito"] for r in got] == ["OK"] * 4
    assert len({r["id_operazione"] for r in got}) == 4
    assert len(certificates(home)) == 4
    kept = kept_by_name(home)
    assert sorted(kept) == sorted(names)
    for n, name in enumerate(names):
        assert kept[name].packed and kept[name].data == make_csr(50 + n)
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
