"""Which files in ``inbox/`` are complete, from what is on disk (events are only hints).

- an entry renamed into ``inbox/`` (a moved event), or anything that is not a regular
  file (a symlink, FIFO, device or folder is refused without waiting): at once;
- a regular file: once its inode, size and mtime have been stable for
  ``settle_seconds``; with inotify, a file opened or modified and not yet closed is
  waited for, for at most ``write_timeout_seconds`` without change;
- a file that could not be claimed (its rename failed) waits until it changes.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass

from .events import Wakeup
from .folders import HomeFolders

__all__ = ["Readiness", "Scan"]

_Key = tuple[int, int, int]  # inode, size, mtime_ns


@dataclass
class _Sighting:
    key: _Key
    since: float  # monotonic time the key was first seen


@dataclass(frozen=True)
class Scan:
    ready: list[str]  # to take now, in name order
    next_check: float | None  # seconds until a waiting file may become ready
    candidates: int  # names seen (not writers' names)


def _key(info: os.stat_result) -> _Key:
    return info.st_ino, info.st_size, info.st_mtime_ns


class Readiness:
    def __init__(
        self, wakeup: Wakeup, *, settle_seconds: float, write_timeout_seconds: float
    ) -> None:
        self._wakeup = wakeup
        self._settle = settle_seconds
        self._write_timeout = write_timeout_seconds
        self._seen: dict[str, _Sighting] = {}
        self.unclaimable: dict[str, _Key] = {}

    def scan(self, folders: HomeFolders, moved_in: set[str]) -> Scan:
        now, wall = time.monotonic(), time.time()
        names = folders.candidates()
        ready: list[str] = []
        next_check: float | None = None
        for name in names:
            try:
                info = folders.lstat(name)
            except OSError:
                continue  # taken or removed meanwhile
            wait = self._wait(name, info, name in moved_in, now, wall)
            if wait is None:
                continue
            if wait <= 0:
                ready.append(name)
                self._seen.pop(name, None)
            else:
                next_check = wait if next_check is None else min(next_check, wait)
        present = set(names)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        for gone in set(self.unclaimable) - present:
            del self.unclaimable[gone]
        self._wakeup.keep_only(present)
        return Scan(ready, next_check, len(names))

    def _wait(
        self, name: str, info: os.stat_result, moved_in: bool, now: float, wall: float
    ) -> float | None:
        """Seconds until ``name`` is ready (<= 0: now), None while it cannot be claimed."""
        key = _key(info)
        if name in self.unclaimable:
            if self.unclaimable[name] == key:
                return None
            del self.unclaimable[name]  # changed: try again
        if moved_in or not stat.S_ISREG(info.st_mode):
            return 0.0
        sighting = self._seen.get(name)
        if sighting is None or sighting.key != key:
            sighting = self._seen[name] = _Sighting(key, now)
        unchanged = now - sighting.since
        if self._wakeup.is_writing(name) and info.st_nlink == 1:
            return self._write_timeout - unchanged
        age = wall - info.st_mtime_ns / 1e9  # negative for an mtime in the future
        return self._settle - max(unchanged, age)

    def cannot_claim(self, name: str, info: os.stat_result) -> None:
        """Leave ``name`` alone until it changes (its rename out of inbox/ failed)."""
        self.unclaimable[name] = _key(info)
