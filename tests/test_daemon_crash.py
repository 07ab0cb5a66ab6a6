"""Crash safety: ``kill -9`` a real ``certdesk watch`` many times, at random moments, while
it works through a backlog of hundreds of requests; then restart it until the backlog is
done and check that nothing was lost, doubled or left half-way.

The kill moments mix a random delay after the start (start-up, recovery, scanning,
signing, publishing) with "as soon as k more receipts appeared" (the middle of a batch's
publishing). The seed is printed; ``CERTDESK_CRASH_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import os
import random
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from archive_support import kept_by_name, pack_records
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from daemon_support import (
    DaemonProcess,
    codice_fiscale,
    configure,
    crash_seed,
    make_csr,
    processes_mentioning,
    receipts,
    wait_for,
)

from certdesk.names import safe_name
from conftest import drop, run_certdesk

PERSONS = 100  # one key each
VARIANTS = 3  # distinct requests per person and key
REPEATS = 20  # byte-identical copies under other names: idempotent retries
INVALID = 20  # refused: broken files and codici fiscali with a wrong check character
KILLS = 20


def _corpus(rng: random.Random) -> dict[str, bytes]:
    corpus: dict[str, bytes] = {}
    for person in range(PERSONS):
        for variant in range(VARIANTS):
            corpus[f"req-{person:03d}-{variant}.csr"] = make_csr(200 + person, variant)
    originals = sorted(corpus)
    for n in range(REPEATS):
        corpus[f"again-{n:02d}.csr"] = corpus[rng.choice(originals)]
    for n in range(INVALID // 4):
        corpus[f"broken-{n:02d}.csr"] = b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n"
        corpus[f"misnamed-{n:02d}.json"] = make_csr(200 + n)  # a CSR named .json
        wrong = codice_fiscale(200 + n)[:-1] + ("X" if codice_fiscale(200 + n)[-1] != "X" else "Y")
        corpus[f"bad-cf-{n:02d}.csr"] = make_csr(200 + n, common_name=wrong)
        corpus[f"no-cf-{n:02d}.csr"] = make_csr(200 + n, common_name=f"Mario Rossi {n}")
    return corpus


def _count(folder: Path) -> int:
    return sum(1 for name in os.listdir(folder) if not name.startswith("."))


def _kill(daemon: DaemonProcess, rng: random.Random, cycle: int) -> str:
    """Let the daemon run until a random moment, then SIGKILL it. Returns when."""
    assert daemon.proc is not None
    outbox, work = daemon.home / "outbox", daemon.home / "state" / "work"
    trigger = cycle % 4
    if trigger == 0:  # anywhere: start-up, recovery, scanning, a batch, idle
        delay = rng.uniform(0.05, 1.5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.proc.wait(timeout=delay)  # it never exits by itself: this is the delay
        how = f"after {delay:.2f} s"
    else:
        # 1: reading, deciding, signing (claims taken); 2: certificates written, receipts
        # not yet; 3: receipts being written.
        folder = {1: work, 2: outbox / "certs", 3: outbox / "receipts"}[trigger]
        start = 0 if trigger == 1 else _count(folder)
        more = 1 if trigger == 1 else rng.randint(1, 20)
        try:
            wait_for(lambda: _count(folder) >= start + more, timeout=3, interval=0.001)
            how = f"{more} more in {folder.name}"
        except AssertionError:
            how = f"idle (waited for {folder.name})"  # the backlog ran out first
    assert daemon.proc.poll() is None, daemon.log()
    daemon.signal(signal.SIGKILL)
    daemon.wait(10)
    return how


@pytest.mark.slow
def test_kill_9_during_a_backlog_loses_and_doubles_nothing(home: Path) -> None:
    rng = crash_seed()
    configure(home, rescan_seconds=0.3, settle_seconds=0.1, batch_size=16)
    corpus = _corpus(rng)
    names = list(corpus)
    rng.shuffle(names)
    waves = [names[: len(names) // 4]] + [
        names[len(names) // 4 :][i::KILLS] for i in range(KILLS)
    ]
    for name in waves[0]:  # a backlog before the first start
        drop(home, name, corpus[name])

    interrupted = 0
    history: list[str] = []
    for cycle in range(KILLS):
        live = cycle % 3 == 0  # some waves arrive while the daemon runs
        if not live:
            for name in waves[cycle + 1]:
                drop(home, name, corpus[name])
        daemon = DaemonProcess(home, workers=1 + cycle % 2).start()
        try:
            if live:
                for name in waves[cycle + 1]:
                    drop(home, name, corpus[name])
            history.append(_kill(daemon, rng, cycle))
            # The signing workers die with the daemon: none is left holding the CA key.
            # (Checked before close(), which would kill the whole process group.)
            wait_for(lambda: not processes_mentioning(str(home)), 30, "orphaned workers to die")
        finally:
            daemon.close()
        if os.listdir(home / "state" / "work"):
            interrupted += 1
    print(f"{KILLS} kills ({interrupted} with inputs in state/work/): {history}")

    finish = run_certdesk(home, "watch", "--once", "--workers", "2", timeout=120)
    assert "Traceback" not in finish.stderr, finish.stderr
    _check_invariants(home, corpus)
    assert interrupted >= 1, "no kill landed in the middle of a batch"


def _check_invariants(home: Path, corpus: dict[str, bytes]) -> None:
    outbox = home / "outbox"
    # Nothing left behind, nothing lost: every input moved out of inbox/ into state/,
    # its original kept once, byte for byte, in a pack whose every record is whole (a
    # torn tail was cut), where the store says.
    assert os.listdir(home / "inbox") == []
    assert os.listdir(home / "state" / "work") == []
    kept = kept_by_name(home)
    assert sorted(kept) == sorted(corpus)
    for name, original in kept.items():
        assert original.packed and original.data == corpus[name], name
        assert original.quarantined == (not name.startswith(("req-", "again-"))), name
    in_packs = pack_records(home)
    assert sorted(in_packs) == sorted(k.claim for k in kept.values())
    for original in kept.values():
        assert in_packs[original.claim][2]["file"] == original.name
    # No half-written file anywhere in outbox/.
    for root, _, files in os.walk(outbox):
        assert not [f for f in files if f.startswith(".") and f.endswith(".tmp")], root

    # Exactly one receipt per input.
    got = receipts(home)
    assert sorted(got) == sorted(f"{safe_name(name)}.json" for name in corpus)
    by_input = {name: got[f"{safe_name(name)}.json"] for name in corpus}
    for name, receipt in by_input.items():
        assert receipt["file"] == name
        valid = name.startswith(("req-", "again-"))
        assert receipt["esito"] == ("OK" if valid else "KO"), (name, receipt)

    # One request, one IdOperazione, one certificate per distinct valid request; the
    # byte-identical retries point at the request of the same bytes.
    by_bytes: dict[bytes, set[str]] = collections.defaultdict(set)
    for name, receipt in by_input.items():
        if receipt["esito"] == "OK":
            by_bytes[corpus[name]].add(receipt["id_operazione"])
    assert all(len(ids) == 1 for ids in by_bytes.values()), by_bytes
    accepted = {next(iter(ids)) for ids in by_bytes.values()}
    assert len(accepted) == PERSONS * VARIANTS
    repeats = [r for r in by_input.values() if r.get("ripetizione")]
    assert len(repeats) == REPEATS

    certificates = {p.stem: p for p in (outbox / "certs").glob("*.pem")}
    assert set(certificates) == accepted

    db = sqlite3.connect(f"file:{home / 'state' / 'certdesk.sqlite3'}?mode=ro", uri=True)
    try:
        rows: list[tuple[Any, ...]] = db.execute(
            "SELECT id_operazione, stato, seriale, cert_der FROM requests"
        ).fetchall()
        events = collections.Counter(
            r[0] for r in db.execute("SELECT id_operazione FROM events").fetchall()
        )
    finally:
        db.close()
    activated = {r[0]: r for r in rows if r[1] == "ATTIVATO"}
    assert set(activated) == accepted
    assert all(r[1] in ("ATTIVATO", "RIFIUTATO") for r in rows)
    assert not [r for r in rows if r[1] == "RIFIUTATO" and r[0] in accepted]
    # Requests: one per distinct valid request plus one per refused CSR-named input
    # (a refused .json has no request row).
    refused_csr = [n for n in corpus if n.endswith(".csr") and not n.startswith(("req-", "again-"))]
    assert len(rows) == len(accepted) + len(refused_csr)
    # Every certificate file is the one in the store; serials are unique.
    serials = set()
    for id_op, (_, _, seriale, der) in activated.items():
        cert = x509.load_pem_x509_certificate(certificates[id_op].read_bytes())
        assert cert.public_bytes(Encoding.DER) == der
        assert format(cert.serial_number, "x") == seriale
        serials.add(seriale)
    assert len(serials) == len(activated)
    # Journal: IN_GENERAZIONE -> ATTIVATO for each certificate, one row for a refusal.
    for id_op, _, _, _ in rows:
        assert events[id_op] == (2 if id_op in activated else 1), id_op
    with open(outbox / "ledger.csv", newline="", encoding="utf-8") as fh:
        ledger_ids = [row["IdOperazione"] for row in csv.DictReader(fh)]
    assert sorted(ledger_ids) == sorted(r[0] for r in rows)
    verified = run_certdesk(home, "verify-ledger", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
