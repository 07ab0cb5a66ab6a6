"""The daemon's upkeep between inputs: periodic work, the columnar ledger, idle work.

Each runs the engine's own operation (``operations/upkeep``) and decides what a failure
means for the daemon: a fault of the machine pauses it (``pause``); anything else is
logged, and the work that failed rests before it is tried again, so a bug never fills the
log or spins the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from certdesk.faults import MachineFault, machine_fault
from certdesk.service import Engine

from .options import DaemonOptions

__all__ = ["Upkeep"]

log = logging.getLogger("certdesk.daemon")


class Upkeep:
    def __init__(
        self, engine: Engine, options: DaemonOptions, pause: Callable[[MachineFault], None]
    ) -> None:
        self.engine = engine
        self.options = options
        self._pause = pause
        self.last_periodic = time.monotonic()
        self.last_columnar = time.monotonic()
        self._idle_rests_until = 0.0
        self._columnar_rests_until = 0.0

    def _failed(self, exc: Exception, what: str) -> bool:
        """True when ``exc`` was a fault of the machine (the daemon pauses); else logged."""
        if (fault := machine_fault(exc)) is not None:
            self._pause(fault)
            return True
        log.exception("%s failed", what)
        return False

    def periodic(self) -> None:
        """Expiry, a rollover's new issuer, the CRLs before their nextUpdate, the issuer's
        validity (a warning), a checkpoint of the store."""
        self.last_periodic = time.monotonic()
        try:
            self.engine.periodic()
        except Exception as exc:
            self._failed(exc, "periodic work (expiry, CRL)")

    def catch_up_columnar(self) -> None:
        """outbox/ledger.parquet/ up to the store: a few parts rewritten, or nothing."""
        now = time.monotonic()
        if now < self._columnar_rests_until:
            return
        self.last_columnar = now
        try:
            self.engine.catch_up_columnar()
        except Exception as exc:
            if not self._failed(exc, "outbox/ledger.parquet's update (tried again later)"):
                self._columnar_rests_until = now + self.options.busy_periodic_seconds

    def idle_work(self) -> bool:
        """One short slice of idle work (OCSP pre-signing, CRL entries), between two looks
        at inbox/; False when nothing is due (or it failed: then it rests until the next
        periodic pass)."""
        if time.monotonic() < self._idle_rests_until:
            return False
        try:
            return self.engine.idle_work(ahead=not self.options.once) > 0
        except Exception as exc:
            if not self._failed(exc, "idle work (OCSP responses, CRL entries; tried again later)"):
                self._idle_rests_until = time.monotonic() + self.options.busy_periodic_seconds
            return False
