"""What a run measures: the sizes of a full run and of a smoke run, and the targets."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BURSTS", "FULL", "SMOKE", "TARGETS", "Sizes", "Targets"]

BURSTS = 3  # per home; the fastest counts


@dataclass(frozen=True)
class Sizes:
    raw: int = 400  # CSRs per raw repetition
    raw_reps: int = 3
    backlog: int = 2000
    backlog_reps: int = 3  # runs per worker count, interleaved; the best one counts
    workers: tuple[int, ...] = (1, 2)
    drops: int = 200
    crl: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    store: int = 1_000_000
    lookups: int = 1000
    burst: int = 200
    openssl: int = 100
    serving_store: int = 100_000  # requests in the home the OCSP responder serves
    serving_sample: int = 2000  # sampled requests; the active ones' responses are asked
    serving_seconds: float = 5.0  # per wrk run
    root_key: str = "rsa4096"
    issuing_key: str = "rsa3072"
    panels: tuple[int, ...] = (10_000, 100_000, 1_000_000)  # requests per panels home
    panels_passes: int = 3  # browser passes per home; the medians count
    panels_people: int = 20  # people whose rows load_ledger reads, one each
    panels_repeat: int = 5  # runs of each in-process question

    @property
    def corpus(self) -> int:
        """CSRs the run needs: the largest set any measurement uses."""
        return max(self.backlog, self.raw, self.drops, BURSTS * self.burst, self.openssl)


FULL = Sizes()
SMOKE = Sizes(
    raw=12,
    raw_reps=1,
    backlog=16,
    backlog_reps=1,
    drops=3,
    crl=(50, 500),
    store=3000,
    lookups=50,
    burst=6,
    openssl=3,
    serving_store=2000,
    serving_sample=100,
    serving_seconds=1.0,
    root_key="rsa2048",
    issuing_key="rsa2048",
    panels=(300,),
    panels_passes=0,  # tests/test_bench_panels.py runs the browser pass
    panels_people=5,
    panels_repeat=2,
)


@dataclass(frozen=True)
class Targets:
    e2e1: float = 0.9  # end-to-end with --workers 1, times raw
    e2e2: float = 1.6  # end-to-end with --workers 2, times raw
    openssl: float = 40.0  # end-to-end (default workers), times the openssl loop
    p50_ms: float = 50.0
    p99_ms: float = 200.0
    crl100k_s: float = 3.0
    crl1m_s: float = 30.0
    lookup_ms: float = 10.0
    rss_mb: float = 300.0
    scale_ratio: float = 0.8  # burst rate at scale over the empty home's: no growth
    ocsp_rate: float = 5000.0  # responses/s at 50 clients
    ocsp_p99_ms: float = 20.0
    ocsp_static: float = 0.5  # times nginx serving the same files
    panel_visible_s: float = 2.0  # Stato and Annullamento, navigation -> shown
    panel_filter_s: float = 0.5  # each filter (and a prefix typed) -> the page changed
    kernel_mib: float = 300.0  # a panel's kernel, RSS
    load_whole_s: float = 1.5  # load_ledger(home)
    load_person_ms: float = 100.0  # load_ledger(home, codice_fiscale=...)

    def e2e(self, workers: int) -> float | None:
        """The end-to-end target for ``workers``, None for counts without one."""
        return {1: self.e2e1, 2: self.e2e2}.get(workers)

    def crl_seconds(self, entries: int) -> float | None:
        """The CRL target for ``entries``, None for sizes without one."""
        return {100_000: self.crl100k_s, 1_000_000: self.crl1m_s}.get(entries)


TARGETS = Targets()
