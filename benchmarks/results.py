"""Everything one run measured, as typed values: what the table and the notes are made of."""

from __future__ import annotations

from dataclasses import dataclass

from .backlog import WorkerCount
from .crl import CrlResult
from .latency import Latency
from .panels_case import PanelsResult
from .scale_case import ScaleResult
from .serving_case import ServingResult
from .settings import Sizes

__all__ = ["CpuCosts", "FloorCosts", "Measurements", "PanelsResult", "Throughput"]


@dataclass(frozen=True)
class CpuCosts:
    """CPU seconds per request, by who spends them."""

    inspect_s: float  # CSR checks, in a worker
    sign_s: float  # the signature, in a worker: raw's time less the checks
    overhead_s: float  # the main process' work (claim, read, commits, files, archive)


@dataclass(frozen=True)
class FloorCosts:
    """What no daemon of the contract avoids (``benchmarks/floor.py``)."""

    files_s: float  # CPU per request for its files
    startup_s: float  # CPU of the interpreter and the modules ``certdesk watch`` loads


@dataclass(frozen=True)
class Throughput:
    raw_before: float  # cert/s in this process, before the end-to-end runs
    raw_after: float  # and after them
    e2e: tuple[WorkerCount, ...]  # in the order of ``Sizes.workers``
    cpu: CpuCosts
    floor: FloorCosts

    @property
    def raw(self) -> float:
        """The stricter reference for every ratio: the higher of the two raw rates."""
        return max(self.raw_before, self.raw_after)

    @property
    def best_e2e(self) -> float:
        return max(count.best.rate for count in self.e2e)

    def default_e2e(self, cores: int) -> WorkerCount:
        """The run at the daemon's default worker count (one per core), or the most workers."""
        by_workers = {count.workers: count for count in self.e2e}
        return by_workers.get(cores, by_workers[max(by_workers)])


@dataclass(frozen=True)
class Measurements:
    sizes: Sizes
    cores: int
    throughput: Throughput
    latency: Latency
    crls: tuple[CrlResult, ...]  # in the order of ``Sizes.crl``
    scale: ScaleResult
    serving: ServingResult
    openssl: float  # cert/s of the openssl loop
    panels: PanelsResult | None = None  # panels and ledger at scale
