"""The free-space reserve: below it the daemon claims nothing new.

A request taken out of ``inbox/`` on a file system about to fill up would only wait in
``state/work/`` for space to come back; left in ``inbox/`` it waits just as well, and the
daemon does not move a whole inbox into ``state/`` meanwhile. The reserve also keeps room
for the largest file an operation rewrites: an annullamento writes ``ledger.csv`` anew
(aside, then renamed), so the reserve grows with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from certdesk.faults import FULL_DISK, MACHINE_FAULT, MachineFault

__all__ = ["SpaceReserve"]

# Below this many free inodes a file system is full too (each input needs a few).
_MIN_FREE_INODES = 256


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


@dataclass(frozen=True)
class SpaceReserve:
    folders: tuple[Path, ...]  # where the daemon writes: state/, outbox/
    min_free_bytes: int
    ledger: Path  # rewritten whole by an annullamento

    def shortfall(self) -> MachineFault | None:
        """A FULL_DISK fault when a folder's file system is below the reserve, else None."""
        try:
            needed = self.min_free_bytes + self._ledger_size()
            seen: set[int] = set()
            for folder in self.folders:
                info = os.statvfs(folder)
                if info.f_fsid in seen:
                    continue
                seen.add(info.f_fsid)
                free = info.f_bavail * info.f_frsize
                if free < needed:
                    return MachineFault(
                        FULL_DISK,
                        f"{_mib(free)} free on the file system of {folder}, below the "
                        f"reserve of {_mib(needed)} ([daemon] min_free_mib plus the size "
                        "of ledger.csv, which an annullamento rewrites)",
                    )
                if info.f_files and info.f_favail < _MIN_FREE_INODES:
                    return MachineFault(
                        FULL_DISK, f"{info.f_favail} free inodes on the file system of {folder}"
                    )
        except OSError as exc:
            return MachineFault(MACHINE_FAULT, f"cannot measure the free space: {exc}")
        return None

    def _ledger_size(self) -> int:
        try:
            return os.stat(self.ledger).st_size
        except FileNotFoundError:
            return 0
