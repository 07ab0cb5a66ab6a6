"""Claimed inputs to their operation, in the order they came."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..intake import Claim
from ..receipts import Outcome, Tipo
from .cancelling import cancel_run
from .feed import Feed
from .issuing import issue
from .parts import Parts

__all__ = ["process"]


def process(
    parts: Parts,
    items: Iterable[Claim],
    report: Callable[[list[Outcome]], None] | None = None,
) -> list[Outcome]:
    """Runs of requests go through the issuing pipeline, runs of anything else are
    decided together (``cancelling``). ``items`` may be lazy; ``report`` hears each
    chunk's outcomes once they are published."""
    outcomes: list[Outcome] = []

    def published(done: list[Outcome]) -> None:
        outcomes.extend(done)
        if report is not None and done:
            report(done)

    feed = Feed(items)
    while (item := feed.peek()) is not None:
        if Tipo.of(item.name) is Tipo.RICHIESTA:
            issue(parts, feed, published)
        else:
            published(cancel_run(parts, feed.others(parts.chunk_size())))
    return outcomes
