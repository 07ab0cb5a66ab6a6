"""The table: each measurement's rows, in the order of the run, from its typed results."""

from __future__ import annotations

from . import prose
from .bursts import BestBurst, BestCancel
from .crl import CrlResult
from .latency import Latency
from .report import Row
from .results import Measurements, Throughput
from .scale_case import LiveFigures, ScaleResult, StoreFigures
from .serving_case import CLIENTS, ServingResult
from .settings import TARGETS, Sizes

__all__ = ["count_label", "table"]


def _row(text: prose.RowText, met: bool | None = None, **values: object) -> Row:
    """``text`` filled with ``values``; the target shows only with a verdict."""
    return Row(
        text.section.format_map(values),
        text.measure.format_map(values),
        text.result.format_map(values),
        text.ratio.format_map(values),
        text.target.format_map(values) if met is not None else "",
        met,
    )


def count_label(n: int) -> str:
    """3000 as 3k, 1000000 as 1M: the sizes' names in the rows."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


def _raw_rows(run: Throughput, sizes: Sizes) -> list[Row]:
    cpu, floor = run.cpu, run.floor
    return [
        _row(prose.RAW_BEFORE, rate=run.raw_before),
        _row(prose.RAW_AFTER, rate=run.raw_after),
        _row(
            prose.RAW_CPU,
            inspect_ms=cpu.inspect_s * 1000,
            sign_ms=cpu.sign_s * 1000,
            overhead_ms=cpu.overhead_s * 1000,
        ),
        _row(
            prose.FLOOR,
            files_ms=floor.files_s * 1000,
            startup_s=floor.startup_s,
            startup_ms=floor.startup_s / sizes.backlog * 1000,
            backlog=sizes.backlog,
        ),
    ]


def _end_to_end_rows(run: Throughput, sizes: Sizes) -> list[Row]:
    rows = []
    for count in run.e2e:
        best, target = count.best, TARGETS.e2e(count.workers)
        rates = ", ".join(prose.RUN_RATE.format(rate=r) for r in count.rates)
        ratio = best.rate / run.raw
        rows.append(
            _row(
                prose.END_TO_END,
                ratio >= target if target is not None else None,
                backlog=sizes.backlog,
                workers=count.workers,
                rate=best.rate,
                first=best.first,
                steady=best.steady,
                wall=best.wall,
                main_ms=best.main_ms,
                workers_ms=best.workers_ms,
                ratio=ratio,
                target=target,
                runs=prose.END_TO_END_RUNS.format(rates=rates) if len(count.rates) > 1 else "",
            )
        )
    return rows


def _latency_rows(latency: Latency, sizes: Sizes) -> list[Row]:
    return [
        _row(
            prose.LATENCY_P50,
            latency.p50 <= TARGETS.p50_ms,
            drops=sizes.drops,
            p50=latency.p50,
            target=TARGETS.p50_ms,
        ),
        _row(
            prose.LATENCY_P99,
            latency.p99 <= TARGETS.p99_ms,
            p99=latency.p99,
            max=latency.max,
            target=TARGETS.p99_ms,
        ),
    ]


def _crl_row(crl: CrlResult) -> Row:
    limit = TARGETS.crl_seconds(crl.entries)
    return _row(
        prose.CRL,
        crl.seconds <= limit if limit else None,
        n=count_label(crl.entries),
        seconds=crl.seconds,
        peak_rss_mb=crl.peak_rss_mb,
        der_mb=crl.bytes / 2**20,
        target=limit,
    )


def _store_rows(store: StoreFigures, n: str) -> list[Row]:
    lookups = (
        (prose.BY_CODICE_FISCALE, store.lookup_cf),
        (prose.BY_ID_OPERAZIONE, store.lookup_id),
    )
    return [
        _row(prose.SCALE_POPULATE, n=n, seconds=store.populate_s),
        *(
            _row(
                prose.SCALE_LOOKUP,
                pct.p99 <= TARGETS.lookup_ms,
                by=by,
                n=n,
                p50=pct.p50,
                p99=pct.p99,
                target=TARGETS.lookup_ms,
            )
            for by, pct in lookups
        ),
        _row(prose.SCALE_LEDGER, n=n, seconds=store.ledger_s, mib=store.ledger_mb),
        _row(prose.SCALE_PANDAS, n=n, seconds=store.pandas_s),
    ]


def _burst_runs(bursts: BestBurst) -> str:
    """The rates of every run, each with the share of its time the machine stalled on I/O."""
    return ", ".join(prose.BURST_RUN.format(rate=r.rate, stall=r.io_stall) for r in bursts.runs)


def _cancel_runs(cancels: BestCancel) -> str:
    return ", ".join(
        prose.CANCEL_RUN.format(ms=r.seconds * 1000, stall=r.io_stall) for r in cancels.runs
    )


def _live_rows(live: LiveFigures, n: str, sizes: Sizes) -> list[Row]:
    idle, after = live.rss_idle, live.rss_after
    burst_ratio = live.burst_scale.best.rate / live.burst_empty.best.rate
    cancel_ratio = live.cancel_scale.best.seconds / live.cancel_empty.best.seconds
    # The same "no growth" rule as the burst, as a time: at most 1 / 0.8 as long.
    cancel_limit = 1 / TARGETS.scale_ratio
    return [
        _row(prose.SCALE_START, n=n, seconds=live.start_s),
        _row(
            prose.SCALE_RSS,
            max(idle.rss_mb, after.rss_mb) <= TARGETS.rss_mb,
            n=n,
            rss=idle.rss_mb,
            rss_after=after.rss_mb,
            peak=idle.peak_mb,
            workers=idle.children_mb,
            target=TARGETS.rss_mb,
        ),
        _row(
            prose.SCALE_BURST,
            burst_ratio >= TARGETS.scale_ratio,
            burst=sizes.burst,
            n=n,
            scale_rate=live.burst_scale.best.rate,
            empty_rate=live.burst_empty.best.rate,
            scale_runs=_burst_runs(live.burst_scale),
            empty_runs=_burst_runs(live.burst_empty),
            ratio=burst_ratio,
            target=TARGETS.scale_ratio,
        ),
        _row(
            prose.SCALE_CANCEL,
            cancel_ratio <= cancel_limit,
            n=n,
            scale_ms=live.cancel_scale.best.seconds * 1000,
            empty_ms=live.cancel_empty.best.seconds * 1000,
            scale_runs=_cancel_runs(live.cancel_scale),
            empty_runs=_cancel_runs(live.cancel_empty),
            ratio=cancel_ratio,
            target=cancel_limit,
        ),
    ]


def _scale_rows(scale: ScaleResult, sizes: Sizes) -> list[Row]:
    n = count_label(sizes.store)
    return [*_store_rows(scale.store, n), *_live_rows(scale.live, n, sizes)]


def _baseline_rows(m: Measurements) -> list[Row]:
    default = m.throughput.default_e2e(m.cores).best.rate
    ratio = default / m.openssl
    return [
        _row(prose.OPENSSL_LOOP, count=m.sizes.openssl, rate=m.openssl),
        _row(
            prose.OPENSSL_VERSUS,
            ratio >= TARGETS.openssl,
            default=default,
            loop=m.openssl,
            best=m.throughput.best_e2e,
            ratio=ratio,
            target=TARGETS.openssl,
        ),
    ]


def _serving_rows(serving: ServingResult) -> list[Row]:
    n = count_label(serving.certificates)
    rows = [_row(prose.SERVING_START, n=n, seconds=serving.start_s)]
    for clients, mine, static in zip(CLIENTS, serving.responder, serving.static, strict=True):
        ratio = mine.rate / static.rate
        met = None
        target = ""
        if clients == max(CLIENTS):
            met = (
                mine.rate >= TARGETS.ocsp_rate
                and mine.p99_ms <= TARGETS.ocsp_p99_ms
                and ratio >= TARGETS.ocsp_static
            )
            target = prose.SERVING_TARGET_50.format(
                rate=TARGETS.ocsp_rate, p99=TARGETS.ocsp_p99_ms, ratio=TARGETS.ocsp_static
            )
        values = {
            "clients": clients, "n": n, "rate": mine.rate, "p50": mine.p50_ms,
            "p99": mine.p99_ms, "static_rate": static.rate, "static_p99": static.p99_ms,
            "ratio": ratio, "target": target,
        }  # fmt: skip
        rows.append(_row(prose.SERVING_RUN, met, **values))
    return rows


def table(m: Measurements) -> list[Row]:
    return [
        *_raw_rows(m.throughput, m.sizes),
        *_end_to_end_rows(m.throughput, m.sizes),
        *_latency_rows(m.latency, m.sizes),
        *(_crl_row(crl) for crl in m.crls),
        *_scale_rows(m.scale, m.sizes),
        *_serving_rows(m.serving),
        *_baseline_rows(m),
    ]
