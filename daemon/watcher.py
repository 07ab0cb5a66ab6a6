"""The daemon's loop: filesystem events wake it, the inbox on disk decides what to do.

- at start: ``Engine.recover()`` finishes what a crash interrupted, then the backlog;
- a file renamed into ``inbox/`` (moved event) or closed after writing (close event) is
  taken at once; anything else found by a scan is taken once its size and mtime have
  been stable for ``settle_seconds`` (polling observers and writers that keep a file open);
- a rescan every ``rescan_seconds`` catches whatever events missed (queue overflow,
  files dropped while the daemon was down, network file systems);
- SIGTERM/SIGINT: the batch in hand is finished, then the daemon exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from certdesk.errors import CertdeskError
from certdesk.intake import Claim, claim
from certdesk.service import Engine, Outcome

from .heartbeat import Heartbeat
from .lock import DaemonLock
from .progress import Progress

__all__ = ["Daemon", "DaemonOptions", "run_daemon"]

log = logging.getLogger("certdesk.daemon")


@dataclass(frozen=True)
class DaemonOptions:
    once: bool = False
    polling: bool = False
    rescan_seconds: float = 2.0
    settle_seconds: float = 0.5
    batch_size: int = 64
    heartbeat_seconds: float = 2.0
    progress: bool = False


class _Wakeup(FileSystemEventHandler):
    """Turns events into names to look at; never touches the files itself."""

    def __init__(self, inbox: str) -> None:
        self._inbox = inbox
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self.event = threading.Event()

    def _name_in_inbox(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        folder, name = os.path.split(text)
        return name if os.path.abspath(folder) == self._inbox else None

    def on_any_event(self, event: FileSystemEvent) -> None:
        ready: str | None = None
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            ready = self._name_in_inbox(event.dest_path)
        elif isinstance(event, FileClosedEvent):
            ready = self._name_in_inbox(event.src_path)
        if ready is not None:
            with self._lock:
                self._ready.add(ready)
        self.event.set()

    def take_ready(self) -> set[str]:
        with self._lock:
            ready, self._ready = self._ready, set()
        return ready


class Daemon:
    def __init__(self, engine: Engine, options: DaemonOptions) -> None:
        self.engine = engine
        self.options = options
        self.home = engine.home
        self._stop = threading.Event()
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, since)
        self.heartbeat = Heartbeat(self.home.outbox / "daemon.json")
        self._wakeup = _Wakeup(str(self.home.inbox.absolute()))

    def stop(self, *_: object) -> None:
        self._stop.set()
        self._wakeup.event.set()

    # -- choosing what is complete ---------------------------------------------------
    def _ready_names(self, force: set[str]) -> list[str]:
        now = time.time()
        ready: list[str] = []
        present = set()
        for name in self.engine.scan_inbox():
            present.add(name)
            try:
                info = os.lstat(self.home.inbox / name)
            except FileNotFoundError:
                continue
            if name in force or not stat.S_ISREG(info.st_mode):
                # Renamed in, closed after writing, or not a regular file at all (a
                # symlink, FIFO or folder is refused without waiting).
                ready.append(name)
                self._seen.pop(name, None)
                continue
            key = (info.st_size, info.st_mtime_ns)
            seen = self._seen.get(name)
            if seen is None or seen[:2] != key:
                self._seen[name] = (*key, now)
                seen = self._seen[name]
            # Stable: unchanged since ``settle_seconds`` ago (by our watch or by its mtime).
            age = now - info.st_mtime_ns / 1e9
            if min(age, now - seen[2]) >= 0 and max(age, now - seen[2]) >= self.options.settle_seconds:
                ready.append(name)
                self._seen.pop(name, None)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return ready

    # -- processing ------------------------------------------------------------------
    def _process(self, names: list[str], progress: Progress | None) -> int:
        done = 0
        for start in range(0, len(names), self.options.batch_size):
            claims = []
            for name in names[start : start + self.options.batch_size]:
                try:
                    taken = claim(self.home, name)
                except OSError as exc:
                    log.error("cannot claim %r: %s", name, exc)
                    continue
                if taken is not None:
                    claims.append(taken)
            if not claims:
                continue
            outcomes = self._safe_process(claims)
            for outcome in outcomes:
                self._log_outcome(outcome)
                self.heartbeat.count(outcome)
            done += len(claims)
            if progress is not None:
                progress.advance(len(claims))
            self.heartbeat.maybe_write()
            if self._stop.is_set():
                break
        return done

    def _safe_process(self, claims: list[Claim]) -> list[Outcome]:
        try:
            return self.engine.process(claims)
        except Exception:
            # A bug must not stop the daemon: the claims stay in state/work/ and the
            # next start's recovery retries them; meanwhile say so loudly.
            log.exception("processing a batch of %d inputs failed", len(claims))
            return []

    @staticmethod
    def _log_outcome(outcome: Outcome) -> None:
        log.info(
            "%s esito=%s id_operazione=%s codice=%s",
            outcome.file.encode("unicode_escape").decode("ascii"),
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

    @contextlib.contextmanager
    def _observer(self) -> Iterator[BaseObserver | None]:
        if self.options.once:
            yield None
            return
        observer: BaseObserver = (
            PollingObserver(timeout=self.options.rescan_seconds / 2)
            if self.options.polling
            else Observer()
        )
        observer.schedule(self._wakeup, str(self.home.inbox), recursive=False)
        observer.daemon = True
        observer.start()
        try:
            yield observer
        finally:
            observer.stop()
            observer.join(timeout=10)

    def run(self) -> int:
        lock = DaemonLock(self.home.lock_file)
        lock.acquire()
        try:
            return self._run_locked()
        finally:
            self.heartbeat.write(state="stopped")
            lock.release()

    def _run_locked(self) -> int:
        self.heartbeat.write(state="starting")
        for outcome in self.engine.recover():
            self._log_outcome(outcome)
            self.heartbeat.count(outcome)
        with self._observer():
            self.heartbeat.write(state="running")
            last_periodic = 0.0
            progress = Progress(len(self.engine.scan_inbox())) if self.options.progress else None
            while not self._stop.is_set():
                force = self._wakeup.take_ready()
                ready = self._ready_names(force)
                self.heartbeat.scanned()
                if ready:
                    self._process(ready, progress)
                now = time.monotonic()
                if now - last_periodic >= self.options.rescan_seconds:
                    try:
                        self.engine.periodic()
                    except Exception:
                        log.exception("periodic work (expiry, CRL, OCSP) failed")
                    last_periodic = now
                self.heartbeat.maybe_write()
                if self.options.once:
                    if not self._seen and not ready:
                        self.engine.periodic()  # --once leaves nothing pending: OCSP too
                        break
                    if not ready:
                        time.sleep(min(0.1, self.options.settle_seconds))
                    continue
                if not ready:
                    self._wakeup.event.wait(self.options.rescan_seconds)
                    self._wakeup.event.clear()
            if progress is not None:
                progress.close()
        return 0


def run_daemon(engine: Engine, options: DaemonOptions) -> int:
    daemon = Daemon(engine, options)
    previous = {
        sig: signal.signal(sig, daemon.stop) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return daemon.run()
    except CertdeskError as exc:
        print(f"certdesk: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close()
