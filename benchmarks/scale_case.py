"""A store of a million certificates: lookups, the ledger, pandas, and a daemon on it (its
memory, a burst and an annullamento) against a daemon on an empty home beside it.

The store is filled in bulk by ``benchmarks/scale.py``; this module only measures it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from certdesk.home import Home
from certdesk.publish import Publisher
from certdesk.store import Store

from .bursts import BestBurst, BestCancel, best_bursts, best_cancels
from .corpus import codice_fiscale
from .daemons import Memory, memory, running_daemon
from .homes import new_home
from .latency import Percentiles, percentiles
from .progress import log
from .scale import Population, populate
from .settings import BURSTS, Sizes

__all__ = ["LiveFigures", "ScaleResult", "StoreFigures", "build_columnar", "export_ledger",
           "scale"]


@dataclass(frozen=True)
class StoreFigures:
    populate_s: float
    states: Mapping[str, int]  # requests per state
    lookup_cf: Percentiles  # ms, Store.find(codice_fiscale=...)
    lookup_id: Percentiles  # ms, Store.get(id)
    ledger_s: float
    ledger_mb: float
    pandas_s: float
    pandas_how: str


@dataclass(frozen=True)
class LiveFigures:
    start_s: float  # to the heartbeat's "running"
    rss_idle: Memory  # settled, before the bursts
    rss_after: Memory
    burst_empty: BestBurst
    burst_scale: BestBurst
    cancel_empty: BestCancel
    cancel_scale: BestCancel


@dataclass(frozen=True)
class ScaleResult:
    store: StoreFigures
    live: LiveFigures


def _timed_lookups(store: Store, population: Population) -> tuple[Percentiles, Percentiles]:
    """(by codice fiscale, by IdOperazione), in milliseconds, on the sampled rows."""
    by_cf, by_id = [], []
    for cf, id_op in zip(population.sample_cf, population.sample_id, strict=True):
        started = time.perf_counter()
        found = store.find(codice_fiscale=cf)
        by_cf.append((time.perf_counter() - started) * 1000)
        if not found:
            raise RuntimeError(f"no request found for {cf}")
        started = time.perf_counter()
        record = store.get(id_op)
        by_id.append((time.perf_counter() - started) * 1000)
        if record is None:
            raise RuntimeError(f"no request {id_op}")
    return percentiles(by_cf), percentiles(by_id)


def export_ledger(home: Path, store: Store) -> float:
    """Seconds of ``rebuild_ledger``; the ledger is then marked current, as the engine does."""
    publisher = Publisher(Home.at(home))
    publisher.ensure_layout()
    started = time.perf_counter()
    publisher.rebuild_ledger(store)
    seconds = time.perf_counter() - started
    with store.transaction() as txn:
        txn.mark_ledger(current=True)
    return seconds


def build_columnar(home: Path, store: Store) -> None:
    """outbox/ledger.parquet/, as a home the daemon has kept has it: without it, the
    daemon's first start rebuilds it (a one-time cost on a home from before it, which the
    panels' case measures), and the start measured would be that."""
    Publisher(Home.at(home)).columnar.rebuild(store)


def _load_pandas(home: Path, expected: int) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        from certdesk.frame import load_ledger

        # ledger.csv itself (the Parquet copy's load is the panels' case's figure)
        frame = load_ledger(home / "outbox" / "ledger.csv")
        how = "certdesk.frame.load_ledger of ledger.csv (typed)"
    except ImportError:
        import pandas as pd

        frame = pd.read_csv(home / "outbox" / "ledger.csv", dtype=str, keep_default_na=False)
        how = "pandas.read_csv"
    seconds = time.perf_counter() - started
    if len(frame) != expected:
        raise RuntimeError(f"the ledger has {len(frame)} rows, not {expected}")
    return seconds, how


def _store_figures(home: Path, sizes: Sizes) -> StoreFigures:
    log(f"scale: populating {sizes.store:,} certificates")
    population = populate(home, sizes.store, samples=sizes.lookups)
    os.sync()  # the population's gigabytes must not be flushed on the daemon's time
    store = Store(home / "state" / "certdesk.sqlite3")
    lookup_cf, lookup_id = _timed_lookups(store, population)
    ledger_s = export_ledger(home, store)
    build_columnar(home, store)
    store.close()
    ledger_mb = (home / "outbox" / "ledger.csv").stat().st_size / 2**20
    pandas_s, pandas_how = _load_pandas(home, sizes.store)
    return StoreFigures(
        population.seconds,
        population.states,
        lookup_cf,
        lookup_id,
        ledger_s,
        ledger_mb,
        pandas_s,
        pandas_how,
    )


def _warm(database: Path) -> None:
    """A daemon that has run for a while finds its store in the page cache; this one was
    just written, and the machine may have evicted it since: read it once."""
    with open(database, "rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass


def _against_empty(
    template: Path, work: Path, home: Path, sizes: Sizes, csrs: Sequence[bytes]
) -> tuple[list[BestBurst], list[BestCancel]]:
    """The same bursts and the same annullamenti into ``home``'s daemon and into a daemon
    on an empty home running beside it, the two taking turns; each list is (empty, scale).
    The annullamenti cancel people of the first burst, who have a certificate in both."""
    empty = new_home(template, work, "scale-empty")
    with running_daemon(empty, work / "scale-empty.log"):
        bursts = best_bursts([empty, home], csrs, sizes.burst)
        cancels = best_cancels([empty, home], [codice_fiscale(i) for i in range(BURSTS)])
    shutil.rmtree(empty)
    return bursts, cancels


def _live_figures(
    template: Path, work: Path, home: Path, sizes: Sizes, csrs: Sequence[bytes]
) -> LiveFigures:
    started = time.perf_counter()
    with running_daemon(home, work / "scale.log") as proc:
        start_s = time.perf_counter() - started
        time.sleep(3)  # settle: the first periodic pass (expiry, CRL, OCSP) runs meanwhile
        rss_idle = memory(proc.pid)
        (burst_empty, burst_scale), (cancel_empty, cancel_scale) = _against_empty(
            template, work, home, sizes, csrs
        )
        time.sleep(1)
        rss_after = memory(proc.pid)
    return LiveFigures(
        start_s, rss_idle, rss_after, burst_empty, burst_scale, cancel_empty, cancel_scale
    )


def scale(template: Path, work: Path, sizes: Sizes, csrs: Sequence[bytes], *,
          keep_home: bool = False) -> ScaleResult:
    """A store of ``sizes.store`` certificates: lookups, ledger, pandas, daemon RSS, per-file
    costs against an empty home. The home (``work/scale``) is removed unless ``keep_home``
    (the backup case backs it up next)."""
    home = new_home(template, work, "scale")
    figures = _store_figures(home, sizes)
    os.sync()
    _warm(home / "state" / "certdesk.sqlite3")
    live = _live_figures(template, work, home, sizes, csrs)
    if not keep_home:
        shutil.rmtree(home)
    return ScaleResult(figures, live)
