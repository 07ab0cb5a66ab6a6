"""``python -m benchmarks``: throughput, latency and scale of certdesk, as one table.

Everything runs in this process tree, against homes made in a temporary folder: the raw
signing rate in this process, ``certdesk watch`` as subprocesses (as a user runs it),
the CRL case in a process of its own (for its peak memory), and the ``openssl x509 -req``
loop in bash. Every compared figure is a ratio of two figures measured in this run.

This module runs the measurements in order and writes the report; each measurement is a
module of its own (``raw``, ``overhead``, ``backlog``, ``latency``, ``crl``, ``scale_case``,
``serving_case``, ``openssl_loop``, ``floor``, ``panels_case``, ``backup_case``), the rows
are made by ``rows``, the notes by ``notes``, the panels' section by ``panels_report``, and
every word of the report is in ``prose``; the key in a token (``pkcs11_case``) and the
archive of originals (``archive_case``) have their rows and words in their own modules.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from .archive_case import archive_case, archive_note, archive_rows
from .backlog import best_backlogs
from .backup_case import backup_case, backup_rows_text
from .corpus import load_corpus
from .crl import crl_case
from .environment import environment, run_time
from .floor import files_seconds, startup_seconds
from .homes import REPO, make_template
from .latency import latency
from .notes import notes
from .openssl_loop import openssl_loop
from .overhead import engine_overhead
from .panels_case import panels_case
from .panels_report import panels_section, panels_text
from .pkcs11_case import pkcs11_case, pkcs11_note, pkcs11_rows
from .progress import log
from .raw import inspect_seconds, raw_rate
from .report import Row, render_markdown, render_text
from .results import CpuCosts, FloorCosts, Measurements, PanelsResult, Throughput
from .rows import table
from .scale_case import scale
from .serving_case import serving_case
from .settings import BURSTS, FULL, SMOKE, Sizes

__all__ = ["FULL", "SMOKE", "Sizes", "main", "measure", "run"]


def _throughput(template: Path, work: Path, csrs: Sequence[bytes], sizes: Sizes) -> Throughput:
    """Raw before and after the end-to-end runs (the machine may change meanwhile), then
    where a request's CPU goes, then the floor."""
    log("raw in-process rate (before)")
    raw_before = raw_rate(template, csrs[: sizes.raw], sizes.raw_reps)
    e2e = best_backlogs(template, work, csrs[: sizes.backlog], sizes)
    log("raw in-process rate (after)")
    raw_after = raw_rate(template, csrs[: sizes.raw], sizes.raw_reps)
    raw = max(raw_before, raw_after)
    log("main-process cost per request (instant signer)")
    inspect_s = inspect_seconds(csrs[: sizes.raw])
    overhead_s = engine_overhead(template, work, csrs[: sizes.backlog])
    cpu = CpuCosts(inspect_s, max(1 / raw - inspect_s, 1e-6), overhead_s)
    log("floor: the contract's files alone, and the start-up")
    floor = FloorCosts(files_seconds(work, csrs[: sizes.backlog]), startup_seconds())
    return Throughput(raw_before, raw_after, e2e, cpu, floor)


def _measurements(template: Path, work: Path, csrs: Sequence[bytes], sizes: Sizes) -> Measurements:
    throughput = _throughput(template, work, csrs, sizes)
    log(f"latency: {sizes.drops} single drops into an idle daemon")
    lat = latency(template, work, csrs[: sizes.drops])
    crls = []
    for entries in sizes.crl:
        log(f"CRL with {entries:,} entries")
        crls.append(crl_case(template, work, entries))
    log(f"scale: a store of {sizes.store:,} certificates")
    at_scale = scale(template, work, sizes, csrs[: BURSTS * sizes.burst], keep_home=True)
    log(f"OCSP: certdesk serve on {sizes.serving_store:,} certificates, and nginx")
    serving = serving_case(template, work, sizes)
    log(f"openssl x509 -req loop over {sizes.openssl} CSRs")
    loop = openssl_loop(template, work, csrs[: sizes.openssl])
    log(f"panels and ledger at scale: homes of {', '.join(f'{n:,}' for n in sizes.panels)}")
    panels = panels_case(template, work, sizes)
    cores = os.cpu_count() or 1
    return Measurements(
        sizes, cores, throughput, lat, tuple(crls), at_scale, serving, loop, panels
    )


def measure(sizes: Sizes, work: Path) -> tuple[Measurements, dict[str, str]]:
    """Every measurement, in ``work``; and the environment, read before they start."""
    csrs = load_corpus(sizes.corpus)
    # Timed as installed: a wheel install compiles the bytecode; an editable checkout run
    # with PYTHONDONTWRITEBYTECODE would otherwise compile every module at every start.
    compileall.compile_dir(REPO / "lib", quiet=1)
    log(f"CA: root {sizes.root_key}, issuing {sizes.issuing_key}")
    template = make_template(work, sizes)
    env = environment(work, sizes.issuing_key)
    return _measurements(template, work, csrs, sizes), env


def run(
    sizes: Sizes, work: Path
) -> tuple[list[Row], list[str], dict[str, str], PanelsResult | None]:
    """The table's rows, the notes, the environment and the panels' figures of one run."""
    measured, env = measure(sizes, work)
    log(f"PKCS#11: the issuing key ({sizes.issuing_key}) in a SoftHSM2 token")
    hsm = pkcs11_case(work, load_corpus(sizes.corpus, log=False), sizes)
    archive = archive_case(
        work / "template", work, load_corpus(sizes.backlog, log=False), max(sizes.workers)
    )
    rows = [*table(measured), *pkcs11_rows(hsm, sizes), *archive_rows(archive)]
    notes_ = [*notes(measured), *pkcs11_note(hsm, measured.throughput.raw), *archive_note(archive)]
    # the scale case's home (sizes.store requests) is backed up while its daemon issues
    backup = backup_case(work / "scale", work, load_corpus(sizes.drops, log=False), sizes.store)
    shutil.rmtree(work / "scale")
    notes_.append("**Backup and restore** (issue 17): " + "; ".join(backup_rows_text(backup)))
    return rows, notes_, env, measured.panels


def _work_folder(path: Path | None) -> AbstractContextManager[str]:
    """``path`` (made now, kept afterwards), or a temporary folder removed at the end."""
    if path is None:
        return tempfile.TemporaryDirectory(prefix="certdesk-bench-")
    path.mkdir(parents=True, exist_ok=False)
    return contextlib.nullcontext(str(path))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it works")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--work", type=Path, default=None, help="keep the homes here")
    parser.add_argument("--store", type=int, default=None, help="certificates in the store")
    parser.add_argument("--backlog", type=int, default=None)
    return parser


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = SMOKE if args.smoke else FULL
    if args.store:
        sizes = replace(sizes, store=args.store)
    if args.backlog:
        sizes = replace(sizes, backlog=args.backlog)
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = "python -m benchmarks" + (" --smoke" if args.smoke else "")
    work = _work_folder(args.work)
    started = time.perf_counter()
    with work as folder:
        rows, run_notes, env, panels = run(_sizes(args), Path(folder))
    label, value = run_time(time.perf_counter() - started)
    env[label] = value
    print(render_text(rows))
    section = ""
    if panels is not None:
        print("\n" + panels_text(panels))
        section = panels_section(panels, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        render_markdown(rows, env, run_notes, command, section), encoding="utf-8"
    )
    log(f"written {args.out}")
    return 0
