"""Names of inputs: the text certdesk records for each, and the file names derived from it.

A file system name is bytes; an input may be called anything Linux allows (newlines,
control characters, non-ASCII letters, bytes that are not UTF-8, up to 255 bytes).
Two functions of those raw bytes, each injective, so one input always has one receipt:

``recordable_name(name)``
    The text the store, the ledger and the journal (``FileOrigine``), the receipt's
    ``file`` and the logs hold, and the name the claimed file takes in ``state/work/``.
    A name that is valid UTF-8 with no backslash and no C1 control character is kept as
    it is. Any other name is escaped, reversibly: ``\\`` becomes ``\\\\``, each byte that
    is not UTF-8 ``\\xNN`` (always 80 to ff: bytes below 80 are ASCII), each C1 control
    character U+0080 to U+009F ``\\u00NN`` (so the ledger's ``printable``, which writes
    control characters as ``\\xNN``, cannot turn one into a bad byte's escape).
    Every backslash of a recorded name thus starts one of these escapes, which
    ``raw_name`` undoes. An escape longer than a file name may be (255 bytes) is cut at
    an escape's boundary and ends with ``\\~``, 16 hex digits of SHA-256 of the raw
    bytes, then the name's suffix (``.csr``, ``.json``) when it is short: ``\\~`` is no
    escape, so a cut name never equals an uncut one, and two names cut alike differ by
    their digest.

``receipt_name(name)``
    The receipt is ``outbox/receipts/<safe_name(recorded)>.json``: the recorded name
    itself when it is plain (``[A-Za-z0-9._+@=-]``, at most 150 bytes, not starting with
    ``.`` or ``-``); otherwise every other character becomes ``_``, the result is cut to
    100 characters and ``~`` plus 12 hex digits of SHA-256 of the recorded name are
    appended. ``~`` is not plain, so a digested name never equals a plain one; recorded
    names are distinct texts, so their digests differ.

Clients compute ``receipt_name`` from the name as they wrote it (``str`` as
``os.listdir``/``os.fsdecode`` give it, lone surrogates included, or ``bytes``); the
daemon, which holds only recorded names, computes ``recorded_receipt_name``: both give
the same file name for every input.
"""

from __future__ import annotations

import hashlib
import os
import re

__all__ = [
    "NAME_MAX",
    "is_ignored_name",
    "raw_name",
    "receipt_name",
    "recordable_name",
    "recorded_receipt_name",
    "safe_name",
]

NAME_MAX = 255  # bytes in one file name (Linux NAME_MAX)

_PLAIN = re.compile(r"[A-Za-z0-9._+@=-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._+@=-]")
_MAX_PLAIN = 150
_CUT = 100

# What a name must not hold to be recorded as it is: a backslash (the escape character),
# a byte that is not UTF-8 (a lone surrogate after surrogateescape), a C1 control.
_NEEDS_ESCAPE = re.compile(r"[\\\x80-\x9f\udc80-\udcff]")
# The escapes of an uncut recorded name, exactly as ``_escape`` writes them.
_ESCAPE = re.compile(r"\\(?:(\\)|x([89a-f][0-9a-f])|u(00[89][0-9a-f]))")
_CUT_MARK = "\\~"  # a backslash no escape starts: only a cut name holds it
_DIGEST_HEX = 16
_MAX_SUFFIX = 16  # bytes of a suffix a cut name keeps (".csr", ".json")


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # the byte ``code - 0xDC00`` that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if 0x80 <= code <= 0x9F:
        return f"\\u{code:04x}"
    return char


def recordable_name(name: str | bytes) -> str:
    """The text recorded for the input called ``name``: an injective function of its raw
    bytes, valid UTF-8, and a valid file name (at most 255 bytes) when ``name`` is one.

    ``name`` is the raw bytes, or text as ``os.listdir``/``os.fsdecode`` give it (a byte
    that is not UTF-8 as a lone surrogate). The escape and the cut are described in the
    module's docstring: ``caf<byte E9>.csr`` is recorded as ``caf\\xe9.csr``, the name
    typed as ``caf\\xe9.csr`` as ``caf\\\\xe9.csr``. Never apply it to a recorded name
    (a backslash would be doubled again).
    """
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    text = raw.decode("utf-8", "surrogateescape")
    if _NEEDS_ESCAPE.search(text) is None:
        if len(raw) <= NAME_MAX:
            return text
        tokens = list(text)  # not a Linux name; cut all the same, to stay a file name
    else:
        tokens = [_escape(char) for char in text]
        escaped = "".join(tokens)
        if len(escaped.encode("utf-8")) <= NAME_MAX:
            return escaped
    return _cut(tokens, raw)


def _cut(tokens: list[str], raw: bytes) -> str:
    """``tokens`` (characters and escapes) cut to fit, the digest of ``raw``, the suffix.

    The cut falls between tokens, so the head is whole escapes and ``\\~`` is read as
    the mark, never as the end of one."""
    dots = [i for i, token in enumerate(tokens) if token == "."]  # "." is in no escape
    suffix = "".join(tokens[dots[-1] :]) if dots else ""
    if len(suffix.encode("utf-8")) > _MAX_SUFFIX:
        suffix = ""
    stem = tokens[: dots[-1]] if suffix else tokens
    mark = f"{_CUT_MARK}{hashlib.sha256(raw).hexdigest()[:_DIGEST_HEX]}"
    budget = NAME_MAX - len(mark) - len(suffix.encode("utf-8"))
    head: list[str] = []
    for token in stem:
        budget -= len(token.encode("utf-8"))
        if budget < 0:
            break
        head.append(token)
    return "".join(head) + mark + suffix


def raw_name(recorded: str) -> bytes:
    """The raw bytes of the name ``recorded`` was recorded from: the inverse of
    ``recordable_name`` on the names it did not cut.

    ValueError for a cut name (its digest cannot be undone) and for any text
    ``recordable_name`` never returns (a backslash starting no escape)."""
    parts: list[bytes] = []
    start = 0
    for match in _ESCAPE.finditer(recorded):
        parts.append(_plain_bytes(recorded[start : match.start()]))
        backslash, byte, c1 = match.groups()
        if backslash:
            parts.append(b"\\")
        elif byte:
            parts.append(bytes([int(byte, 16)]))
        else:
            parts.append(chr(int(c1, 16)).encode("utf-8"))
        start = match.end()
    parts.append(_plain_bytes(recorded[start:]))
    return b"".join(parts)


def _plain_bytes(text: str) -> bytes:
    if _NEEDS_ESCAPE.search(text):
        raise ValueError(f"not a name recordable_name returns whole: {text!r}")
    return text.encode("utf-8")


def safe_name(name: str) -> str:
    """The plain file name used for outputs derived from input ``name``."""
    if _PLAIN.fullmatch(name) and len(name) <= _MAX_PLAIN and not name.startswith((".", "-")):
        return name
    raw = name.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    cleaned = _UNSAFE_CHAR.sub("_", name).lstrip(".-")[:_CUT]
    return f"{cleaned}~{digest}"


def recorded_receipt_name(recorded: str) -> str:
    """The file name under ``outbox/receipts/`` of the input recorded as ``recorded``."""
    return f"{safe_name(recorded)}.json"


def receipt_name(name: str | bytes) -> str:
    """The file name under ``outbox/receipts/`` of the input called ``name`` in ``inbox/``
    (``str`` as ``os.listdir`` gives it, or ``bytes``): what the daemon writes."""
    return recorded_receipt_name(recordable_name(name))


def is_ignored_name(name: str) -> bool:
    """Names writers use while a file is incomplete: never taken from the inbox."""
    return name.startswith(".") or name.endswith((".tmp", ".part"))
