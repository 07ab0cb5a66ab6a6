"""``outbox/daemon.json``: is the daemon alive, since when, and what has it done.

Nothing secret: pid, host, version, times and counters. Readers treat the daemon as dead
when ``updated`` is older than a few ``heartbeat_seconds`` or ``state`` is ``stopped``.
``state`` is ``paused`` while a fault of the machine (a full disk) holds it, and ``pausa``
says which: ``{"codice", "messaggio", "dal"}`` (null otherwise). ``avvisi`` lists what the
daemon warns of while it works normally: ``[{"codice": "EMITTENTE_IN_SCADENZA",
"messaggio"}]`` while the active issuing CA has less validity left than a new
certificate's (``certdesk rollover`` is due).
Writing it never stops the daemon: a failure (a full disk) is logged once and retried.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from collections import Counter
from pathlib import Path

from certdesk import __version__
from certdesk.clock import format_utc, now_utc
from certdesk.faults import MachineFault
from certdesk.fsutil import atomic_write
from certdesk.service import Outcome

__all__ = ["Heartbeat"]

log = logging.getLogger("certdesk.daemon")


class Heartbeat:
    def __init__(self, path: Path, every_seconds: float = 2.0) -> None:
        self.path = path
        self.every = every_seconds
        self.started = format_utc(now_utc())
        self.last_scan = ""
        self.state = "starting"
        self.waiting = 0  # candidates in inbox/ at the last scan
        self.counts: Counter[str] = Counter()
        self.pause: dict[str, str] | None = None
        self.avvisi: list[dict[str, str]] = []
        self._written = 0.0
        self._failing = False

    def count(self, outcome: Outcome) -> None:
        self.counts["input"] += 1
        self.counts["ok" if outcome.esito == "OK" else "ko"] += 1
        if outcome.codice == "ERRORE_INTERNO":
            self.counts["errore_interno"] += 1

    def scanned(self, waiting: int) -> None:
        self.last_scan = format_utc(now_utc())
        self.waiting = waiting

    def paused(self, fault: MachineFault) -> None:
        since = format_utc(now_utc())
        self.pause = {"codice": fault.code, "messaggio": fault.message, "dal": since}
        self.write(state="paused")

    def resumed(self) -> None:
        self.pause = None
        self.write(state="running")

    def maybe_write(self) -> None:
        if time.monotonic() - self._written >= self.every:
            self.write()

    def write(self, state: str | None = None) -> None:
        if state is not None:
            self.state = state
        document = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "version": __version__,
            "state": self.state,
            "started": self.started,
            "updated": format_utc(now_utc()),
            "last_scan": self.last_scan or None,
            "heartbeat_seconds": self.every,
            "inbox": self.waiting,
            "counts": {"input": 0, "ok": 0, "ko": 0, **self.counts},
            "pausa": self.pause,
            "avvisi": self.avvisi,
        }
        data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
        self._written = time.monotonic()
        try:
            # The heartbeat need not survive power loss: skip the folder fsync.
            atomic_write(self.path, data, sync_dir=False)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) and self._overwrite(data):
                return
            if not self._failing:
                log.warning("cannot write the heartbeat %s: %s", self.path, exc)
            self._failing = True
            return
        self._failing = False

    def _overwrite(self, data: bytes) -> bool:
        """On a full disk, write over the old heartbeat in place: its blocks are already
        allocated, so the pause still reaches the panels. A reader may catch it half
        written, and reads it again."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError:
            return False
        finally:
            os.close(fd)
        return True
