"""Bursts of CSRs and annullamenti into running daemons, timed to their receipts."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from certdesk.client import file_cancellation

from .daemons import io_stall_us
from .homes import check_receipts, receipt_path, wait_for
from .settings import BURSTS

__all__ = [
    "BestBurst",
    "BestCancel",
    "BurstRun",
    "CancelRun",
    "best_bursts",
    "best_cancels",
    "burst",
]


@dataclass(frozen=True)
class BurstRun:
    rate: float  # CSRs per second, from the first rename to the last receipt
    seconds: float
    io_stall: float  # share of the time some task of the machine waited on I/O


@dataclass(frozen=True)
class BestBurst:
    """Every burst into one home, in order; the fastest counts."""

    runs: tuple[BurstRun, ...]

    @property
    def best(self) -> BurstRun:
        return max(self.runs, key=lambda r: r.rate)


@dataclass(frozen=True)
class CancelRun:
    seconds: float  # drop to receipt
    io_stall: float  # share of the time some task of the machine waited on I/O


@dataclass(frozen=True)
class BestCancel:
    """Every annullamento into one home, in order; the fastest counts."""

    runs: tuple[CancelRun, ...]

    @property
    def best(self) -> CancelRun:
        return min(self.runs, key=lambda r: r.seconds)


def _set_aside(inbox: Path, csrs: Sequence[bytes], prefix: str) -> list[Path]:
    """The burst's files written beside ``inbox/`` entries, ready to be renamed in."""
    asides = []
    for i, pem in enumerate(csrs):
        aside = inbox / f".{prefix}-{i:05d}.csr.tmp"
        aside.write_bytes(pem)
        asides.append(aside)
    os.sync()
    return asides


def burst(home: Path, csrs: Sequence[bytes], prefix: str) -> BurstRun:
    """Drop a burst of CSRs (each renamed in) into a running daemon; time to the last receipt."""
    if not csrs:
        raise ValueError("an empty burst: the corpus is too short for the bursts asked")
    inbox = home / "inbox"
    asides = _set_aside(inbox, csrs, prefix)
    names = [a.name[1:-4] for a in asides]
    stalled = io_stall_us()
    started = time.perf_counter()
    for aside, name in zip(asides, names, strict=True):
        os.rename(aside, inbox / name)
    wait_for([receipt_path(home, n) for n in names], timeout=600, poll=0.002)
    seconds = time.perf_counter() - started
    stall = (io_stall_us() - stalled) / 1e6 / seconds
    check_receipts(home, names)
    return BurstRun(len(names) / seconds, seconds, stall)


def best_bursts(homes: Sequence[Path], csrs: Sequence[bytes], size: int) -> list[BestBurst]:
    """Bursts of distinct CSRs into each home's running daemon, the homes taking turns (in
    alternating order), a few seconds apart; the fastest of each home counts. Taking turns
    gives the homes compared the same machine: on this shared one, background writeback
    alone can halve a burst's rate for a minute."""
    results: list[list[BurstRun]] = [[] for _ in homes]
    for n in range(BURSTS):
        turn = list(enumerate(homes))
        for index, home in turn if n % 2 == 0 else reversed(turn):
            time.sleep(4)  # the last burst's idle work (its OCSP responses) is done
            batch = csrs[n * size : (n + 1) * size]
            results[index].append(burst(home, batch, f"burst-{n}"))
    return [BestBurst(tuple(runs)) for runs in results]


def _cancel_one(home: Path, codice_fiscale: str) -> CancelRun:
    """One annullamento (cumulative for the codice fiscale), timed drop → receipt."""
    stalled = io_stall_us()
    started = time.perf_counter()
    path = file_cancellation(
        home,
        codice_fiscale=codice_fiscale,
        id_operazione=[],
        motivazione="ATTIVITA_CESSATA",
        operatore="benchmark",
    )
    receipt = receipt_path(home, path.name)
    wait_for([receipt], timeout=600, poll=0.002)
    seconds = time.perf_counter() - started
    stall = (io_stall_us() - stalled) / 1e6 / seconds
    outcome = json.loads(receipt.read_text())
    if outcome.get("esito") != "OK":
        raise RuntimeError(f"annullamento refused: {outcome.get('errori')}")
    return CancelRun(seconds, stall)


def best_cancels(homes: Sequence[Path], codici_fiscali: Sequence[str]) -> list[BestCancel]:
    """One annullamento per codice fiscale into each home's daemon, the homes taking turns
    as for the bursts; the fastest of each home counts. One alone would say little: the
    ledger's rewrite is a copy of the whole file, as fast as the disk is at that moment."""
    results: list[list[CancelRun]] = [[] for _ in homes]
    for n, codice in enumerate(codici_fiscali):
        turn = list(enumerate(homes))
        for index, home in turn if n % 2 == 0 else reversed(turn):
            time.sleep(2)  # the last one's idle work (OCSP, the replaced ledger freed) is done
            results[index].append(_cancel_one(home, codice))
    return [BestCancel(tuple(runs)) for runs in results]
