"""Backup and restore of a large home (issue 17, part 7), and the pause a backup causes.

- ``certdesk backup`` of a home of ``size`` requests (``scale.populate``): seconds and
  MB/s; then ``backup --verify`` (every hash, ``integrity_check``, the journal's chain);
- the restore of its state (every file copied and hashed, the store checked, the
  counter and reservations set): ``outbox/`` is not republished at this size (a
  republish signs an OCSP response for every valid certificate: its cost is
  ``certdesk republish``'s, not the backup's), and is timed on a small home instead;
- the drop → receipt latency of single drops into a daemon running on the same home,
  without a backup, then while backups run back to back: p50, p99, max.

Runnable alone: ``python -m benchmarks.backup_case [--home H] [--size N]`` (``--home``: a
home already populated, e.g. one the scale case left; it is read, never changed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from certdesk.backup import take_backup
from certdesk.backup_check import verify_backup
from certdesk.home import Home
from certdesk.restore import restore_backup

from .daemons import running_daemon
from .homes import CERTDESK, ENV, PASSPHRASE
from .latency import _drop_one, percentile
from .progress import log

__all__ = ["BackupBench", "backup_case", "backup_rows_text"]


@dataclass(frozen=True)
class BackupBench:
    requests: int
    megabytes: float
    backup_s: float
    snapshot_s: float
    verify_s: float
    restore_s: float
    small_restore_s: float  # a small home's whole restore, republish included
    small_requests: int
    idle: tuple[float, float, float]  # drop → receipt, ms: p50, p99, max
    during: tuple[float, float, float]
    backups_during: int


def _timed_backup(home: Path, dest: Path) -> tuple[float, float, int]:
    started = time.perf_counter()
    result = take_backup(Home.at(home), dest)
    return time.perf_counter() - started, result.snapshot_seconds, result.total_bytes


def _drops(home: Path, csrs: Sequence[bytes], prefix: str) -> list[float]:
    samples = []
    for i, pem in enumerate(csrs):
        samples.append(_drop_one(home, f"{prefix}-{i:05d}.csr", pem))
        time.sleep(0.05)
    return samples


def _spread(samples: Sequence[float]) -> tuple[float, float, float]:
    return percentile(samples, 50), percentile(samples, 99), max(samples)


def _settle(pid: int, quiet: float = 5.0, limit: float = 120.0) -> None:
    """Wait until the daemon uses under ``quiet`` % of a core over a second, twice."""
    process, calm, deadline = psutil.Process(pid), 0, time.monotonic() + limit
    process.cpu_percent(interval=None)  # the first call starts the count
    while calm < 2 and time.monotonic() < deadline:
        time.sleep(1.0)
        calm = calm + 1 if process.cpu_percent(interval=None) < quiet else 0


def _latencies(
    home: Path, work: Path, csrs: Sequence[bytes]
) -> tuple[tuple[float, float, float], tuple[float, float, float], int]:
    """Drops without a backup, then while backups of the same home run back to back."""
    half = len(csrs) // 2
    with running_daemon(home, work / "backup-latency.log", workers=1) as proc:
        _settle(proc.pid)  # a daemon's start on a large home (CRL, OCSP ahead) is not a backup's
        idle = _drops(home, csrs[:half], "idle")
        stop, taken = threading.Event(), [0]

        def backups() -> None:
            # the command an operator runs, in its own process: its reads and hashing
            # compete with the daemon for the disk and the cores, not with this timing loop
            while not stop.is_set():
                dest = work / f"during-{taken[0]}"
                subprocess.run([*CERTDESK, "--home", str(home), "backup", str(dest)],
                               env=ENV, check=True, capture_output=True)  # fmt: skip
                shutil.rmtree(dest)
                taken[0] += 1

        thread = threading.Thread(target=backups, name="bench-backups")
        thread.start()
        try:
            during = _drops(home, csrs[half:], "during")
        finally:
            stop.set()
            thread.join()
    return _spread(idle), _spread(during), taken[0]


def backup_case(
    home: Path, work: Path, csrs: Sequence[bytes], requests: int, small: Path | None = None
) -> BackupBench:
    """``home`` (populated with ``requests``) backed up, verified, its state restored;
    ``small`` (a home with a few certificates) restored whole; then the latencies."""
    dest = work / "backup-big"
    log(f"backup of a home of {requests:,} requests")
    backup_s, snapshot_s, size = _timed_backup(home, dest)
    started = time.perf_counter()
    verify_backup(dest)
    verify_s = time.perf_counter() - started
    started = time.perf_counter()
    # outbox/ is not republished: the populated store's certificates are opaque bytes of
    # a real certificate's size, which a republish cannot parse (its parts are timed by
    # the scale and panels cases: ledger.csv, ledger.parquet/, the CRL)
    restore_backup(dest, Home.at(work / "restored-big"), republish=False)
    restore_s = time.perf_counter() - started
    shutil.rmtree(work / "restored-big")
    shutil.rmtree(dest)
    small_s, small_n = 0.0, 0
    if small is not None:
        take_backup(Home.at(small), work / "backup-small")
        started = time.perf_counter()
        result = restore_backup(work / "backup-small", Home.at(work / "restored-small"))
        small_s, small_n = time.perf_counter() - started, result.manifest.head_seq
    log("drop → receipt latency, without and during backups")
    idle, during, taken = _latencies(home, work, csrs)
    return BackupBench(requests, size / 1e6, backup_s, snapshot_s, verify_s, restore_s,
                       small_s, small_n, idle, during, taken)  # fmt: skip


def backup_rows_text(b: BackupBench) -> list[str]:
    """The case's figures, one line each (the report's section quotes them)."""
    mb = b.megabytes
    small = (
        [f"whole restore of a small home ({b.small_requests} journal rows, republish "
         f"included): {b.small_restore_s:.1f} s"] if b.small_requests else []
    )  # fmt: skip
    return [
        f"backup of {b.requests:,} requests: {b.backup_s:.1f} s, {mb:,.0f} MB, "
        f"{mb / b.backup_s:,.0f} MB/s (store snapshot {b.snapshot_s:.1f} s)",
        f"backup --verify: {b.verify_s:.1f} s, {mb / b.verify_s:,.0f} MB/s",
        f"restore of the state (checked copy, counters; outbox/ not republished): "
        f"{b.restore_s:.1f} s, {mb / b.restore_s:,.0f} MB/s",
        *small,
        "drop → receipt without a backup: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms".format(
            *b.idle
        ),
        f"drop → receipt during {b.backups_during} backups: "
        + "p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms".format(*b.during),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from .corpus import load_corpus
    from .homes import CERTDESK, ENV, make_template, new_home
    from .scale import populate
    from .settings import FULL

    parser = argparse.ArgumentParser(prog="python -m benchmarks.backup_case")
    parser.add_argument("--home", type=Path, help="a populated home (read only)")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--drops", type=int, default=200)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ["CERTDESK_CA_PASSPHRASE"] = PASSPHRASE
    args.work.mkdir(parents=True, exist_ok=True)
    csrs = load_corpus(args.drops + 8)
    template = make_template(args.work, FULL)
    small = new_home(template, args.work, "small")
    for i, pem in enumerate(csrs[:8]):
        (small / "inbox" / f"s{i}.csr").write_bytes(pem)
    subprocess.run([*CERTDESK, "--home", str(small), "watch", "--once"], env=ENV, check=True)
    home = args.home
    if home is None:
        home = new_home(template, args.work, "big")
        populate(home, args.size, samples=1)
    else:
        copy = args.work / "big"  # the daemon writes: a given home is copied, not changed
        shutil.copytree(home, copy)
        home = copy
    result = backup_case(home, args.work, csrs[8:], args.size, small)
    print("\n".join(backup_rows_text(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
