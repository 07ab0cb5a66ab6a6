"""Keep the admin token out of every log line of the web app's process.

Tornado logs every 4xx/5xx answer with its URI (``404 GET /x?token=… (127.0.0.1)``),
Voila and jupyter_server log request URIs in their warnings, and an exception message may
quote a URL. Rather than chase each of those log calls, :func:`install` rewrites every
log record of the process when it is created, whatever its logger or handler (including
Python's last-resort stderr handler, which prints tornado's records since nothing
configures ``tornado.access``):

- ``token=VALUE`` in any case, also URL-encoded (``token%3D…``, ``token%253D…``), and the
  ``Authorization: token|bearer VALUE`` header become ``token=[REDACTED]`` and
  ``Authorization: token [REDACTED]``;
- the token itself, and its URL-encoded forms, become ``[REDACTED]`` wherever they appear
  (for tokens of at least :data:`MIN_LITERAL` characters: a shorter one would blank out
  ordinary words, and is still redacted in the two forms above).

The rewrite applies to the record's final message (``msg % args``), its traceback and its
stack; warnings and uncaught exceptions are routed through the same function.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

__all__ = ["MIN_LITERAL", "REDACTED", "TokenRedactor", "install", "redact"]

REDACTED = "[REDACTED]"
#: Shorter secrets are only redacted after ``token=`` or ``Authorization:``.
MIN_LITERAL = 8

# A value ends at a URL or log delimiter, or at an encoded ``&``, ``#`` or space (so
# ``next=%2F%3Ftoken%3DT%26x%3D1`` keeps its ``%26x%3D1``); any other ``%xx`` is part of it.
_ENDS = r"(?:26|23|20|25(?:26|23|20))"
_VALUE = rf"(?:%(?!{_ENDS})|[^\s&#'\"<>;,%])*"
_QUERY = re.compile(rf"(token)(?:=|%3D|%253D){_VALUE}", re.IGNORECASE)
# "Authorization: token T", also as a dict's repr ("'Authorization': 'Bearer T'")
_HEADER = re.compile(
    r"(authorization['\"]?\s*[:=]\s*['\"]?)(?:(token|bearer|basic)\s+)?[^\s'\",;]+",
    re.IGNORECASE,
)


def _literal_forms(secret: str) -> list[str]:
    """The secret as typed and as it reads inside a URL, longest first."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(quote(secret, safe=""))}
    return sorted(forms, key=len, reverse=True)


def _header_repl(match: re.Match[str]) -> str:
    scheme = f"{match.group(2)} " if match.group(2) else ""
    return f"{match.group(1)}{scheme}{REDACTED}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every token value replaced by :data:`REDACTED` (idempotent)."""
    for secret in secrets:
        if len(secret) >= MIN_LITERAL:
            for form in _literal_forms(secret):
                text = text.replace(form, REDACTED)
    text = _QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _HEADER.sub(_header_repl, text)


class TokenRedactor(logging.Filter):
    """Rewrites a record in place so that no formatter can print the token; never drops one.

    Usable as a handler filter; :func:`install` applies it to every record of the process.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what it held, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            # Formatters print exc_text when set; a custom one re-rendering exc_info
            # would print the exception's unredacted message.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _write(redactor: TokenRedactor, text: str, stream: TextIO | None = None) -> None:
    stream = sys.stderr if stream is None else stream
    if stream is not None:  # None under pythonw, as the hooks it replaces allow
        stream.write(redactor.redact(text))
        stream.flush()


def _write_traceback(redactor: TokenRedactor, header: str, exc_type: type[BaseException],
                     exc: BaseException | None, tb: TracebackType | None) -> None:
    _write(redactor, header + "".join(traceback.format_exception(exc_type, exc, tb)))


def install(secrets: Iterable[str]) -> TokenRedactor:
    """Redact ``secrets`` (and any ``token=`` value) in everything this process logs.

    Call it first thing in the process, before the server creates its loggers: the record
    factory covers every logger and handler created afterwards, and before.
    """
    redactor = TokenRedactor(secrets)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redactor.filter(record)
        return record

    logging.setLogRecordFactory(factory)

    # Warnings, uncaught exceptions: written to stderr by hooks, not through logging
    # (logging.captureWarnings would hand them to a logger with a NullHandler: lost).
    def showwarning(message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line)
        _write(redactor, text, file)

    def excepthook(exc_type: type[BaseException], exc: BaseException,
                   tb: TracebackType | None) -> None:
        _write_traceback(redactor, "", exc_type, exc, tb)

    def thread_excepthook(hook: threading.ExceptHookArgs) -> None:
        if hook.exc_type is SystemExit:
            return  # as threading's own hook: a thread's sys.exit() is silent
        name = hook.thread.name if hook.thread is not None else threading.get_ident()
        _write_traceback(redactor, f"Exception in thread {name}:\n", hook.exc_type,
                         hook.exc_value, hook.exc_traceback)

    warnings.showwarning = showwarning
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    return redactor
