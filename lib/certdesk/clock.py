"""The one clock seam: everything asks ``now_utc()``; tests patch it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

__all__ = ["format_utc", "now_utc", "parse_utc"]


def now_utc() -> datetime:
    return datetime.now(UTC)


# A batch stamps hundreds of rows, events and receipts with the same few moments.
@lru_cache(maxsize=1024)
def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: the format of every file certdesk writes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
