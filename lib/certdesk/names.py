"""File names derived from input names: safe in any shell, file system or URL.

An input may be called anything a file system allows (newlines, control characters,
non-ASCII letters, hundreds of bytes). Its receipt is ``receipts/<safe_name(name)>.json``:
the name itself when it is already plain (``[A-Za-z0-9._+@=-]``, at most 150 bytes,
not starting with ``.`` or ``-``); otherwise every other character becomes ``_``, the
result is cut to 100 characters and ``~`` plus 12 hex digits of SHA-256 of the original
name are appended, so two different names never share a receipt.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["is_ignored_name", "safe_name"]

_PLAIN = re.compile(r"[A-Za-z0-9._+@=-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._+@=-]")
_MAX_PLAIN = 150
_CUT = 100


def safe_name(name: str) -> str:
    """The plain file name used for outputs derived from input ``name``."""
    if _PLAIN.fullmatch(name) and len(name) <= _MAX_PLAIN and not name.startswith((".", "-")):
        return name
    raw = name.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    cleaned = _UNSAFE_CHAR.sub("_", name).lstrip(".-")[:_CUT]
    return f"{cleaned}~{digest}"


def is_ignored_name(name: str) -> bool:
    """Names writers use while a file is incomplete: never taken from the inbox."""
    return name.startswith(".") or name.endswith((".tmp", ".part"))
