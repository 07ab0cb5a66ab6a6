"""The archive of originals (issue 17, part 4): disk used in ``state/`` per request, with
the originals in day packs (this certdesk) and in one folder per input (as before).

One backlog of CSRs through ``certdesk watch --once`` (``backlog``: a fresh home from the
template, the same corpus as the end-to-end rows), then the disk its ``state/`` gained
(blocks allocated, as ``du`` counts them, not file sizes), per request. The folders'
figure is the same home with its packs replaced by the layout certdesk used before,
rebuilt from the same originals (``state/archive/<claim>/<name>``, a 0700 folder and a
file per input): the store, the keys and the rest of ``state/`` are the same bytes in
both. The rate of the run is shown beside the end-to-end rows of the same run: packs
are synced by the batch's one durability barrier, so they add no fsync of their own.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import prose
from .backlog import backlog
from .progress import log
from .report import Row

__all__ = ["ArchiveResult", "archive_case", "archive_note", "archive_rows"]

_SECTION = "archive"
PACKS = prose.RowText(
    _SECTION, "state/ per request, originals in day packs, {requests:,} CSRs",
    "{packs:,.0f} B ({packs_only:,.0f} B of it in the packs; CSRs of {csr:,.0f} B)",
    "{ratio:.2f}x folders", "<= {target}x folders",
)  # fmt: skip
FOLDERS = prose.RowText(
    _SECTION, "state/ per request, one folder per original (before)",
    "{folders:,.0f} B ({folders_only:,.0f} B of it in the folders)",
)  # fmt: skip
RATE_ROW = prose.RowText(
    _SECTION, "watch --once, {requests:,} CSRs, --workers {workers}, with the packs",
    prose.RATE,
)  # fmt: skip
NOTE = (
    "**Archive**: disk allocated in `state/` per request (as `du` counts it) after a "
    "backlog of {requests:,} CSRs, with the originals in day packs, and with the same "
    "originals rebuilt as one folder per input, the layout before packs: {packs:,.0f} B "
    "instead of {folders:,.0f} B ({ratio:.0%}). What remains is the store's rows (the "
    "request, its CSR and certificate, the journal) and the original's own bytes; at 8 "
    "requests/s that is {per_day:,.1f} GiB a day instead of {per_day_before:,.1f} GiB."
)
TARGET = 0.6  # packs must take well under the folders (8 KiB of blocks each)


@dataclass(frozen=True)
class ArchiveResult:
    requests: int
    workers: int
    rate: float
    csr_bytes: float  # mean size of a CSR of the corpus
    packs: float  # bytes of state/ per request, packs
    packs_only: float  # of which the packs
    folders: float  # bytes of state/ per request, folders rebuilt
    folders_only: float  # of which the folders

    @property
    def ratio(self) -> float:
        return self.packs / self.folders


def _du(path: Path) -> int:
    """Bytes allocated under ``path`` (``st_blocks``), folders included, links not followed."""
    total = os.lstat(path).st_blocks * 512
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _as_folders(home: Path, into: Path) -> int:
    """The home's originals as the layout before packs, under ``into``: bytes allocated."""
    into.mkdir(mode=0o700)
    state = home / "state"
    with sqlite3.connect(f"file:{state / 'certdesk.sqlite3'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT o.claim, i.file, o.pack, o.start, o.size FROM originals o"
            " JOIN inputs i ON i.claim = o.claim WHERE o.pack != ''"
        ).fetchall()
    for claim, name, pack, start, size in rows:
        folder = into / claim
        folder.mkdir(mode=0o700)
        with open(state / pack, "rb") as source:
            source.seek(start)
            (folder / name).write_bytes(source.read(size))
    os.sync()  # delayed allocation: blocks are counted once written
    return _du(into)


def archive_case(template: Path, work: Path, csrs: Sequence[bytes], workers: int) -> ArchiveResult:
    log(f"archive: state/ per request over {len(csrs):,} CSRs, packs and folders")
    before = _du(template / "state")
    run = backlog(template, work, csrs, workers, name="archive")
    home = work / f"archive-w{workers}-0"
    os.sync()
    state = home / "state"
    packs_only = sum(os.lstat(p).st_blocks * 512 for p in state.glob("*/*.pack"))
    after = _du(state)
    folders_only = _as_folders(home, work / "archive-folders")
    count = len(csrs)
    packs = (after - before) / count
    folders = (after - packs_only + folders_only - before) / count
    return ArchiveResult(
        count, workers, run.rate, sum(map(len, csrs)) / count, packs, packs_only / count,
        folders, folders_only / count,
    )  # fmt: skip


def _row(text: prose.RowText, met: bool | None = None, **values: object) -> Row:
    cells = (text.section, text.measure, text.result, text.ratio)
    target = text.target.format_map(values) if met is not None else ""
    return Row(*(c.format_map(values) for c in cells), target, met)


def archive_rows(result: ArchiveResult) -> list[Row]:
    values = {
        "requests": result.requests, "workers": result.workers, "rate": result.rate,
        "csr": result.csr_bytes, "packs": result.packs, "packs_only": result.packs_only,
        "folders": result.folders, "folders_only": result.folders_only,
        "ratio": result.ratio, "target": TARGET,
    }  # fmt: skip
    return [
        _row(PACKS, result.ratio <= TARGET, **values),
        _row(FOLDERS, **values),
        _row(RATE_ROW, **values),
    ]


def archive_note(result: ArchiveResult) -> list[str]:
    day = 8 * 86400 / 2**30  # bytes per request -> GiB per day at 8 requests/s
    text = NOTE.format(
        requests=result.requests, packs=result.packs, folders=result.folders,
        ratio=result.ratio, per_day=result.packs * day, per_day_before=result.folders * day,
    )  # fmt: skip
    return [text]
