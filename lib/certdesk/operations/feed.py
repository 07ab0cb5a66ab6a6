"""Claims as the operations ask for them: runs of requests in chunks, anything else alone.

The daemon's claims are lazy (each ``rename`` out of ``inbox/`` happens when the pipeline
wants the next chunk), so a backlog of any size flows through one pipeline without
draining it, and a stop request simply ends the feed.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..intake import Claim
from ..receipts import Tipo

__all__ = ["Feed"]


class Feed:
    def __init__(self, items: Iterable[Claim]) -> None:
        self._items = iter(items)
        self._next: Claim | None = None
        self._ended = False

    def peek(self) -> Claim | None:
        if self._next is None and not self._ended:
            self._next = next(self._items, None)
            self._ended = self._next is None
        return self._next

    def requests(self, limit: int) -> list[Claim]:
        """Up to ``limit`` request claims, stopping before anything else."""
        return self._run(limit, requests=True)

    def others(self, limit: int) -> list[Claim]:
        """Up to ``limit`` claims of anything but requests, stopping before a request."""
        return self._run(limit, requests=False)

    def _run(self, limit: int, *, requests: bool) -> list[Claim]:
        taken: list[Claim] = []
        while len(taken) < limit and (item := self.peek()) is not None:
            if (Tipo.of(item.name) is Tipo.RICHIESTA) != requests:
                break
            taken.append(item)
            self._next = None
        return taken
