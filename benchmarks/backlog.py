"""End to end: ``certdesk watch --once --workers N`` over a backlog, timed from outside."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .daemons import CpuSplit, cpu_seconds
from .homes import CERTDESK, ENV, check_receipts, fill_inbox, new_home, receipt_path
from .progress import log
from .settings import Sizes

__all__ = ["BacklogRun", "WorkerCount", "backlog", "best_backlogs"]


@dataclass(frozen=True)
class BacklogRun:
    """One run; times in seconds from the start of the command."""

    rate: float  # CSRs / time to the last receipt's mtime, start-up included
    wall: float  # to the command's exit
    first: float  # to the first receipt
    last: float  # to the last receipt
    steady: float  # the rate after the first receipt
    main_ms: float  # CPU per request of the daemon's main process
    workers_ms: float  # CPU per request of its signing processes


@dataclass(frozen=True)
class WorkerCount:
    """Every run at one worker count; the best one counts."""

    workers: int
    best: BacklogRun
    rates: tuple[float, ...]  # of every run, in order


def _watch_once(
    home: Path, workers: int, log_file: Path, last_receipt: Path, env: Mapping[str, str]
) -> CpuSplit:
    """Runs the command to its exit; its CPU is read when ``last_receipt`` appears."""
    cpu = CpuSplit(0.0, 0.0)
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [*CERTDESK, "--home", str(home), "watch", "--once", "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        while proc.poll() is None and not last_receipt.exists():
            time.sleep(0.002)  # a stat every 2 ms: nothing next to the daemon's work
        if proc.poll() is None:
            cpu = cpu_seconds(proc.pid)
        if proc.wait() != 0:
            raise RuntimeError(f"certdesk watch --once exited {proc.returncode}: see {log_file}")
    return cpu


def _steady(count: int, first: float, last: float) -> float:
    """The rate after the first receipt; for a run shorter than the mtime resolution, the
    rate from the start (``first`` and ``last`` are both from the start)."""
    if last - first > 0.01:
        return (count - 1) / (last - first)
    return count / last


def backlog(
    template: Path, work: Path, csrs: Sequence[bytes], workers: int, run: int = 0, *,
    name: str = "backlog", env: Mapping[str, str] = ENV,
) -> BacklogRun:  # fmt: skip
    """The backlog's CSRs in ``inbox/`` of a fresh home, then ``watch --once``; the CPU of
    the daemon and of its signing processes is read when the last receipt appears.
    ``name`` names the home (and its log); ``env`` the command's environment."""
    name = f"{name}-w{workers}-{run}"
    home = new_home(template, work, name)
    names = fill_inbox(home, csrs, "backlog")
    # Inputs are taken in name order, and chunks published in order: this one is last.
    last_receipt = receipt_path(home, max(names))
    started = time.time()
    cpu = _watch_once(home, workers, work / f"{name}.log", last_receipt, env)
    ended = time.time()
    times = check_receipts(home, names)
    first, last = min(times) - started, max(times) - started
    return BacklogRun(
        rate=len(names) / last,
        wall=ended - started,
        first=first,
        last=last,
        steady=_steady(len(names), first, last),
        main_ms=cpu.main_s * 1000 / len(names),
        workers_ms=cpu.children_s * 1000 / len(names),
    )


def best_backlogs(
    template: Path, work: Path, csrs: Sequence[bytes], sizes: Sizes
) -> tuple[WorkerCount, ...]:
    """Every worker count ``sizes.backlog_reps`` times, interleaved (a disturbance of the
    machine hits them alike); the best run of each counts."""
    runs: dict[int, list[BacklogRun]] = {w: [] for w in sizes.workers}
    for run_no in range(sizes.backlog_reps):
        for workers in sizes.workers:
            log(f"backlog of {sizes.backlog} CSRs, --workers {workers} (run {run_no + 1})")
            runs[workers].append(backlog(template, work, csrs, workers, run_no))
    return tuple(
        WorkerCount(w, max(done, key=lambda r: r.rate), tuple(r.rate for r in done))
        for w, done in runs.items()
    )
