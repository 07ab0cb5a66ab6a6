"""Panels and ledger at scale: homes of 10k, 100k and 1M requests, their ledger's two copies,
``load_ledger`` and the query engines in this process, the panels in Chromium.

Each home is filled by ``scale.populate``, its ``ledger.csv`` exported and its
``ledger.parquet/`` rebuilt (both timed); ``panels_ledger`` then times the questions in
this process and ``panels_browser`` the panels through ``certdesk admin``. The words of
the section are in ``prose``; ``panels_report`` fills them.

``python -m benchmarks.panels_case`` runs this case alone and writes its section into
``docs/benchmarks.md`` in place (``make bench`` writes it with the rest of the page).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from certdesk.ledger_query import LedgerQuery

from .homes import REPO, make_template, new_home
from .panels_browser import BrowserPass, Sample, browser_available, browser_passes
from .panels_ledger import LedgerCopies, LedgerFigures, ledger_figures, write_copies
from .progress import log
from .scale import populate
from .settings import FULL, SMOKE, Sizes

__all__ = ["PanelsResult", "PanelsSize", "main", "panels_case"]


@dataclass(frozen=True)
class PanelsSize:
    requests: int
    populate_s: float
    states: dict[str, int]
    copies: LedgerCopies
    ledger: LedgerFigures
    passes: tuple[BrowserPass, ...]  # empty when the browser was not run


@dataclass(frozen=True)
class PanelsResult:
    sizes: tuple[PanelsSize, ...]  # smallest first
    passes: int  # browser passes asked for, per size
    browser_skipped: str  # why the browser did not run, "" when it did
    started: str  # when the case started (UTC), and the machine's load then
    load: tuple[float, float, float]
    revision: str = ""  # the code measured: git describe --always --dirty


def _people(home: Path, count: int) -> tuple[list[str], str]:
    """``count`` codici fiscali spread over the home (by hash, not by position: populate's
    own samples fall on one state), and a person (16 characters, not a company) with an
    ATTIVATO certificate, whom the browser types."""
    query = LedgerQuery(home)
    try:
        people = [str(r[0]) for r in query.rows(
            "SELECT DISTINCT CodiceFiscale FROM ledger ORDER BY hash(CodiceFiscale) LIMIT ?",
            [count])]
        active = query.rows(
            "SELECT CodiceFiscale FROM ledger WHERE Stato = 'ATTIVATO'"
            " AND length(CodiceFiscale) = 16 ORDER BY hash(CodiceFiscale) LIMIT 1")
    finally:
        query.close()
    if not active:
        raise RuntimeError("no person of the home has an ATTIVATO certificate")
    return people, str(active[0][0])


def _one_size(template: Path, work: Path, count: int, sizes: Sizes, browser: bool
              ) -> PanelsSize:
    home = new_home(template, work, f"panels-{count}")
    log(f"panels: populating {count:,} requests")
    population = populate(home, count, samples=1)
    log(f"panels: ledger.csv and ledger.parquet/ at {count:,}")
    copies = write_copies(home)
    os.sync()  # our own writes must not be flushed on the measurements' time
    people, typed = _people(home, sizes.panels_people)
    log(f"panels: load_ledger and the two engines at {count:,}")
    ledger = ledger_figures(home, people, count, sizes.panels_repeat)
    passes: list[BrowserPass] = []
    if browser:
        sample = Sample(typed, population.states.get("ANNULLATO", 0), count)
        log(f"panels: {sizes.panels_passes} browser pass(es) at {count:,}")
        passes = browser_passes(home, sample, sizes.panels_passes, work)
    shutil.rmtree(home)
    return PanelsSize(count, population.seconds, population.states, copies, ledger,
                      tuple(passes))


def panels_case(template: Path, work: Path, sizes: Sizes) -> PanelsResult:
    """Every size of ``sizes.panels``, smallest first; the browser where it can run."""
    skipped = ""
    if sizes.panels_passes <= 0:
        skipped = "no browser pass asked for"
    elif not browser_available():
        skipped = "Chromium or Playwright is missing"
    load = os.getloadavg()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    revision = _revision()
    done = tuple(_one_size(template, work, n, sizes, not skipped) for n in sorted(sizes.panels))
    return PanelsResult(done, sizes.panels_passes, skipped, started, load, revision)


def _revision() -> str:
    """The checkout measured (others may change lib/ while a long run goes on)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


# -- this case alone ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.panels_case",
                                     description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one tiny home, one pass")
    parser.add_argument("--sizes", default=None, help="requests per home, e.g. 300,10000")
    parser.add_argument("--passes", type=int, default=None, help="browser passes per home")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--work", type=Path, default=None, help="keep the homes here")
    parser.add_argument("--save", type=Path, default=None,
                        help="also keep the measurements here (pickle), to render again")
    parser.add_argument("--render", type=Path, default=None, metavar="SAVED",
                        help="measure nothing: write the section of measurements --save kept")
    return parser


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = replace(SMOKE, panels_passes=1) if args.smoke else FULL
    if args.sizes:
        sizes = replace(sizes, panels=tuple(int(n) for n in args.sizes.split(",")))
    if args.passes is not None:
        sizes = replace(sizes, panels_passes=args.passes)
    return sizes


def _measure(args: argparse.Namespace) -> PanelsResult:
    if args.render is not None:
        # our own file, written by --save: trusted as the code that wrote it
        loaded: PanelsResult = pickle.loads(args.render.read_bytes())
        return loaded
    sizes = _sizes(args)
    started = time.perf_counter()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=False)
    folder = (contextlib.nullcontext(str(args.work)) if args.work is not None
              else tempfile.TemporaryDirectory(prefix="certdesk-bench-panels-"))
    with folder as where:
        template = make_template(Path(where), sizes)
        result = panels_case(template, Path(where), sizes)
    log(f"panels: done in {time.perf_counter() - started:.0f} s")
    if args.save is not None:
        args.save.write_bytes(pickle.dumps(result))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from .panels_report import panels_section, panels_text, splice_section

    args = _parser().parse_args(argv)
    command = "python -m benchmarks.panels_case" + (" --smoke" if args.smoke else "")
    result = _measure(args)
    print(panels_text(result))
    section = panels_section(result, command)
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(splice_section(old, section), encoding="utf-8")
    log(f"written {args.out}")
    return 0


if __name__ == "__main__":
    # run as benchmarks.panels_case, not __main__: the figures --save pickles must name
    # their classes where --render and the harness find them
    from benchmarks.panels_case import main as _main

    raise SystemExit(_main())
