"""A progress bar on stderr for ``watch --once`` over a backlog, only on a terminal.

The per-input log lines go to the same stderr: ``clear()`` wipes the bar before they are
written and ``advance()`` draws it again below them, so the bar stays the last line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.started = time.monotonic()
        self._stream = stream if stream is not None else sys.stderr
        self._shown = False

    def grow(self, total: int) -> None:
        """More inputs arrived than the backlog counted at the start."""
        self.total = max(self.total, total)

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False

    def advance(self, count: int) -> None:
        self.done += count
        self.total = max(self.total, self.done)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        filled = min(_WIDTH, _WIDTH * self.done // self.total)
        percent = 100 * self.done // self.total
        rate = self.done / elapsed
        self._stream.write(
            f"\r\x1b[K[{'#' * filled}{'.' * (_WIDTH - filled)}] {percent:3d}% "
            f"{self.done}/{self.total} {rate:.0f}/s"
        )
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False
