"""A pause: a fault of the machine holds the daemon until it is gone.

Said once in the log and in the heartbeat when it begins, however often the fault recurs
while it lasts, and once when it ends; whether it is over is tried every
``retry_seconds``.
"""

from __future__ import annotations

import logging
import time

from certdesk.faults import MachineFault

from .heartbeat import Heartbeat

__all__ = ["Pause"]

log = logging.getLogger("certdesk.daemon")


class Pause:
    def __init__(self, heartbeat: Heartbeat, retry_seconds: float) -> None:
        self._heartbeat = heartbeat
        self._retry = retry_seconds
        self.fault: MachineFault | None = None
        self.met_again = False  # a fault was met since the last attempt to end it began
        self._since = 0.0
        self._tried = 0.0

    def begin(self, fault: MachineFault) -> None:
        self.met_again = True
        if self.fault is not None:
            return
        self.fault = fault
        self._since = self._tried = time.monotonic()
        log.warning(
            "paused: %s: %s. Nothing new is taken from inbox/ and nothing is decided; what "
            "was taken waits in state/work/ and is finished once this is fixed",
            fault.code,
            fault.message,
            extra={"codice": fault.code},
        )
        self._heartbeat.paused(fault)

    def attempt_due(self) -> bool:
        """Whether to try ending the pause now (then ``met_again`` starts afresh)."""
        now = time.monotonic()
        if now - self._tried < self._retry:
            return False
        self._tried = now
        self.met_again = False
        return True

    def end(self) -> None:
        if self.fault is None:
            return
        lasted = time.monotonic() - self._since
        log.info("resumed after %.0f s: %s is over", lasted, self.fault.code)
        self.fault = None
        self._heartbeat.resumed()
