"""How each figure is measured, and what the CPU accounting of this run allows."""

from __future__ import annotations

from dataclasses import asdict

from . import prose
from .results import Measurements, Throughput
from .settings import BURSTS, TARGETS, Sizes

__all__ = ["notes"]


def _method_notes(sizes: Sizes, states: dict[str, int]) -> list[str]:
    values = {
        **asdict(sizes),
        "bursts": BURSTS,
        "states": ", ".join(prose.STATE_COUNT.format(state=k, count=v) for k, v in states.items()),
    }
    return [
        note.format_map(values)
        for note in (
            prose.NOTE_RAW,
            prose.NOTE_END_TO_END,
            prose.NOTE_LATENCY,
            prose.NOTE_CRL,
            prose.NOTE_SCALE,
            prose.NOTE_SERVING,
            prose.NOTE_OPENSSL,
        )
    ]


def _bound(run: Throughput, workers: int, cores: int) -> str:
    """The end-to-end rate ``workers`` allow: the least of what the main process, the
    workers and the cores can do per second."""
    cpu = run.cpu
    main = 1 / cpu.overhead_s
    signing = workers / (cpu.inspect_s + cpu.sign_s)  # the workers check, then sign
    on_cores = min(cores, workers + 1) / (cpu.inspect_s + cpu.overhead_s + cpu.sign_s)
    best = min(main, signing, on_cores)
    # On a tie, the cores before the workers before the main process.
    if best == on_cores:
        limit = prose.BOUND_CORES
    elif best == signing:
        limit = prose.BOUND_WORKERS
    else:
        limit = prose.BOUND_MAIN
    return prose.CPU_BOUND.format(
        workers=workers,
        best=best,
        best_x=best / run.raw,
        limit=limit,
        main=main,
        signing=signing,
        cores=min(cores, workers + 1),
        cpu=on_cores,
    )


def _cpu_accounting(run: Throughput, cores: int, workers: tuple[int, ...]) -> str:
    """What the CPU accounting of this run allows, to read the end-to-end ratios against."""
    cpu = run.cpu
    goal = TARGETS.e2e2 * run.raw
    rest = min(min(cores, 3) / goal - cpu.inspect_s - cpu.sign_s, 1 / goal)
    return prose.NOTE_CPU_ACCOUNTING.format(
        inspect_ms=cpu.inspect_s * 1000,
        overhead_ms=cpu.overhead_s * 1000,
        sign_ms=cpu.sign_s * 1000,
        bounds="; ".join(_bound(run, n, cores) for n in workers),
        e2e2=TARGETS.e2e2,
        goal=goal,
        rest=prose.REST_LEFT.format(rest_ms=rest * 1000) if rest > 0 else prose.REST_NONE,
    )


def _cpu_measured(run: Throughput, cores: int) -> list[str]:
    """The same bound from the CPU the real runs spent, read when their last receipt
    appeared (start-up included): the daemon's own and its signing processes'."""
    parts = []
    for count in sorted(run.e2e, key=lambda c: c.workers):
        best = count.best
        total = best.main_ms + best.workers_ms
        if total <= 0:
            continue
        bound = min(cores, count.workers + 1) * 1000 / total
        parts.append(
            prose.CPU_MEASURED_RUN.format(
                workers=count.workers,
                main_ms=best.main_ms,
                workers_ms=best.workers_ms,
                total_ms=total,
                bound=bound,
                bound_x=bound / run.raw,
                cores=min(cores, count.workers + 1),
                rate=best.rate,
            )
        )
    if not parts:
        return []
    return [
        prose.NOTE_CPU_MEASURED.format(
            runs="; ".join(parts),
            e2e2=TARGETS.e2e2,
            cores=cores,
            budget_ms=cores * 1000 / (TARGETS.e2e2 * run.raw),
            raw_ms=1000 / run.raw,
        )
    ]


def _floor(run: Throughput, sizes: Sizes, cores: int) -> str:
    """How much of the 2-worker target's CPU budget the floor leaves to certdesk's own work."""
    cpu, floor = run.cpu, run.floor
    goal = TARGETS.e2e2 * run.raw
    budget = min(cores, 3) / goal  # CPU seconds per request the target allows, in all
    left = budget - cpu.inspect_s - cpu.sign_s - floor.files_s - floor.startup_s / sizes.backlog
    return prose.NOTE_FLOOR.format(
        files_ms=floor.files_s * 1000,
        startup_s=floor.startup_s,
        startup_ms=floor.startup_s / sizes.backlog * 1000,
        backlog=sizes.backlog,
        e2e2=TARGETS.e2e2,
        goal=goal,
        cores=min(cores, 3),
        budget_ms=budget * 1000,
        inspect_ms=cpu.inspect_s * 1000,
        sign_ms=cpu.sign_s * 1000,
        left=(prose.FLOOR_LEFT if left > 0 else prose.FLOOR_NONE).format(left_ms=left * 1000),
        own_ms=(cpu.overhead_s - floor.files_s) * 1000,
    )


def notes(m: Measurements) -> list[str]:
    run = m.throughput
    return [
        *_method_notes(m.sizes, dict(m.scale.store.states)),
        _cpu_accounting(run, m.cores, m.sizes.workers),
        *_cpu_measured(run, m.cores),
        _floor(run, m.sizes, m.cores),
    ]
