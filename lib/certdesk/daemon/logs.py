"""The daemon's log: one line per input, text or JSON, on stderr."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime

from certdesk.receipts import Outcome

__all__ = ["log_outcome", "printable", "setup_logging"]

log = logging.getLogger("certdesk.daemon")


class _JsonFormatter(logging.Formatter):
    _FIELDS = ("file", "tipo", "esito", "id_operazione", "codice")

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self._FIELDS:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def setup_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("certdesk")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def printable(name: str) -> str:
    """A file name for a text log line: quoted, newlines and control characters escaped."""
    return json.dumps(name, ensure_ascii=False)


def log_outcome(outcome: Outcome) -> None:
    log.info(
        "%s tipo=%s esito=%s id_operazione=%s codice=%s",
        printable(outcome.file),
        outcome.tipo,
        outcome.esito,
        outcome.id_operazione or "-",
        outcome.codice or "-",
        extra={
            "file": outcome.file,
            "tipo": outcome.tipo,
            "esito": outcome.esito,
            "id_operazione": outcome.id_operazione,
            "codice": outcome.codice,
        },
    )
