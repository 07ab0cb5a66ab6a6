"""``kill -9`` a real ``certdesk watch`` while it works through a backlog of requests and
annullamenti, and while it writes ``outbox/ledger.parquet/``; after a restart that finishes
the backlog, the columnar copy equals ledger.csv and nothing is left aside.

The daemon runs with parts of 4 rows and a catch-up every 0.2 s of a backlog (set by a
wrapper around the command line, ``_WRAPPER``), so that a backlog rewrites many parts, and
kills land in part writes. The kill moments rotate: as soon as a part is being written
(its aside exists), as soon as the record changed, after some receipts, after a random
delay. The seed is printed; ``CERTDESK_CRASH_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from columnar_support import (
    MANIFEST,
    assert_columnar_equals_csv,
    assert_tidy,
    columnar_folder,
    columnar_matches_csv,
    csv_rows,
    part_paths,
)
from daemon_support import (
    DaemonProcess,
    a_random_while,
    codice_fiscale,
    configure,
    crash_seed,
    kill_at,
    make_csr,
    processes_mentioning,
    receipts,
    wait_for,
)

from certdesk.client import file_cancellation
from certdesk.names import safe_name
from conftest import PASSPHRASE, drop, receipt, run_certdesk

ROWS = 4
_WRAPPER = f"""
import dataclasses, sys
from certdesk.outbox_columnar import ColumnarLedger
ColumnarLedger.__init__.__defaults__ = ({ROWS},)
import certdesk.daemon.main as daemon_main
_options = daemon_main._options
daemon_main._options = lambda home, args: dataclasses.replace(
    _options(home, args), columnar_seconds=0.2)
from certdesk.cli import main
sys.exit(main())
"""
PRE = 12  # people with a certificate before the first start: each cancelled in a wave
WAVES = 6
PER_WAVE = 12  # new requests per wave


class SmallPartsDaemon(DaemonProcess):
    """``certdesk watch`` with parts of ``ROWS`` rows and quick catch-ups."""

    def start(self) -> SmallPartsDaemon:
        env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WRAPPER, *self.args],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        return self


def _once(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, "--home", str(home), "watch", "--once",
         "--workers", "1"],
        env={**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def _asides(home: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return [n for n in os.listdir(columnar_folder(home)) if n.endswith(".tmp")]
    return []


def _record(home: Path) -> bytes:
    with contextlib.suppress(FileNotFoundError):
        return (columnar_folder(home) / MANIFEST).read_bytes()
    return b""


def _kill(daemon: SmallPartsDaemon, rng: random.Random, cycle: int) -> str:
    home = daemon.home
    trigger = cycle % 4

    def moment() -> str:
        if trigger == 0:
            wait_for(lambda: _asides(home), timeout=4, interval=0.0002)
            return "a part being written"
        if trigger == 1:
            start = _record(home)
            wait_for(lambda: _record(home) not in (b"", start), timeout=4, interval=0.0005)
            return "the record just changed"
        if trigger == 2:
            start, more = len(receipts(home)), rng.randint(1, 8)
            wait_for(lambda: len(receipts(home)) >= start + more, timeout=4, interval=0.001)
            return f"{more} more receipts"
        return a_random_while(daemon, rng, 0.1, 1.5)

    return kill_at(daemon, moment, trigger)


@pytest.mark.slow
def test_kill_9_during_a_backlog_leaves_a_copy_equal_to_the_csv(home: Path) -> None:
    rng = crash_seed()
    configure(home, rescan_seconds=0.3, settle_seconds=0.05, batch_size=4)
    for n in range(PRE):
        drop(home, f"pre-{n:02d}.csr", make_csr(800 + n))
    _once(home)
    pre_ids = [receipt(home, f"pre-{n:02d}.csr")["id_operazione"] for n in range(PRE)]
    assert len(part_paths(home)) == PRE // ROWS
    assert_columnar_equals_csv(home)

    expected: list[str] = []
    history, mid_backlog, mid_write = [], 0, 0
    for cycle in range(WAVES):
        wave = list(range(cycle * PER_WAVE, (cycle + 1) * PER_WAVE))
        for n in wave:
            drop(home, f"new-{n:03d}.csr", make_csr(820 + n))
            expected.append(f"new-{n:03d}.csr")
        for n in range(cycle * 2, cycle * 2 + 2):  # changes in earlier, full parts
            path = file_cancellation(home, codice_fiscale=codice_fiscale(800 + n),
                                     id_operazione=[pre_ids[n]], motivazione="ALTRO",
                                     nota=f"onda {cycle}", name=f"ann-{n:02d}.json")  # fmt: skip
            expected.append(path.name)
        daemon = SmallPartsDaemon(home, workers=1 + cycle % 2).start()
        try:
            history.append(_kill(daemon, rng, cycle))
            if _asides(home):
                mid_write += 1
            if [n for n in os.listdir(home / "inbox") if not n.startswith(".")] or os.listdir(
                home / "state" / "work"
            ):
                mid_backlog += 1
            wait_for(lambda: not processes_mentioning(str(home)), 30, "the workers to die")
        finally:
            daemon.close()
    print(f"kills: {history}; {mid_backlog} mid-backlog, {mid_write} mid-write")

    with SmallPartsDaemon(home) as daemon:
        try:
            wait_for(lambda: len(receipts(home)) == PRE + len(expected), 60, "every receipt")
            wait_for(lambda: columnar_matches_csv(home), 30, "ledger.parquet == ledger.csv")
            # idle: the copy stays equal (no catch-up undoes it)
            daemon.stop()
        finally:
            daemon.close()
    for name in expected:
        assert receipts(home)[f"{safe_name(name)}.json"]["esito"] == "OK", name
    rows = csv_rows(home)
    assert len(rows) == PRE + WAVES * PER_WAVE
    assert sum(r[4] == "ANNULLATO" for r in rows) == 2 * WAVES
    verified = run_certdesk(home, "verify-ledger", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert_columnar_equals_csv(home)
    assert len(part_paths(home)) >= len(rows) // ROWS
    assert_tidy(home)
    assert mid_backlog >= 1, f"no kill landed in the middle of the backlog: {history}"
