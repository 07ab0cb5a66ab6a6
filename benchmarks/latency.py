"""Latency: single drops into a live, idle daemon, each timed from its rename to its receipt."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .daemons import running_daemon
from .homes import check_receipts, new_home, receipt_path, wait_for

__all__ = ["Latency", "Percentiles", "latency", "percentile", "percentiles"]


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p99: float


@dataclass(frozen=True)
class Latency:
    """Drop to receipt, in milliseconds."""

    p50: float
    p99: float
    max: float


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def percentiles(values: Sequence[float]) -> Percentiles:
    return Percentiles(percentile(values, 50), percentile(values, 99))


def _drop_one(home: Path, name: str, pem: bytes) -> float:
    """Written aside and fsynced first, so that only the rename and the daemon are timed."""
    inbox = home / "inbox"
    aside = inbox / f".{name}.tmp"
    with open(aside, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    receipt = receipt_path(home, name)
    started = time.perf_counter()
    os.rename(aside, inbox / name)
    wait_for([receipt], timeout=60)
    return (time.perf_counter() - started) * 1000


def latency(template: Path, work: Path, csrs: Sequence[bytes]) -> Latency:
    """Single drops (write aside, rename) into a live idle daemon, each timed to its receipt."""
    home = new_home(template, work, "latency")
    names = [f"drop-{i:05d}.csr" for i in range(len(csrs))]
    samples = []
    with running_daemon(home, work / "latency.log"):
        time.sleep(0.5)
        for name, pem in zip(names, csrs, strict=True):
            samples.append(_drop_one(home, name, pem))
            time.sleep(0.05)  # idle again before the next drop
    check_receipts(home, names)
    return Latency(percentile(samples, 50), percentile(samples, 99), max(samples))
