"""Filesystem events as hints: they wake the daemon, the folder on disk decides.

``Wakeup`` turns watchdog's events into hints about entries (moved in, being written),
named by their keys (``folders.key_of``); ``InboxWatch`` runs the observer on every inbox
(``inbox/``, the administrators', each channel's), restarts it if its thread dies, and
routes watchdog's own warnings into the daemon's log, an inotify queue overflow waking a
rescan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
from watchdog.observers.polling import PollingObserver

__all__ = ["InboxWatch", "Wakeup"]

log = logging.getLogger("certdesk.daemon")

# watchdog 7 reports an inotify IN_Q_OVERFLOW only as a warning on this logger (and by
# rebuilding its own recursive watches): no event reaches a handler. See
# https://github.com/gorakhargosh/watchdog/issues/654. The daemon listens to it.
_WATCHDOG_LOGGER = "watchdog"


class Wakeup(FileSystemEventHandler):
    """Turns events into hints about names; never touches the files itself."""

    def __init__(self, inbox: str, *, track_writes: bool) -> None:
        self._inbox = inbox
        self._folders: dict[str, str] = {inbox: ""}  # an inbox's folder -> its keys' prefix
        self._track_writes = track_writes
        self._lock = threading.Lock()
        self._moved_in: set[str] = set()
        self._writing: set[str] = set()
        self.overflows = 0
        self.event = threading.Event()

    def add_inbox(self, folder: str, canale: str) -> None:
        """Events in ``folder`` are about entries of ``canale``."""
        with self._lock:
            self._folders[folder] = f"{canale}/"

    def _name(self, path: str | bytes) -> str | None:
        """The key of the entry an event's path names, or None outside the inboxes."""
        text = os.fsdecode(path)
        if not text:
            return None
        folder, name = os.path.split(text)
        prefix = self._folders.get(os.path.abspath(folder))
        return None if prefix is None else prefix + name

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._note(event)
        except Exception:  # an exception here would end the observer's thread
            log.exception("unexpected filesystem event %r", event)
        finally:
            self.event.set()

    def _note(self, event: FileSystemEvent) -> None:
        with self._lock:
            if isinstance(event, FileMovedEvent | DirMovedEvent):
                if (src := self._name(event.src_path)) is not None:
                    self._writing.discard(src)
                if (dest := self._name(event.dest_path)) is not None:
                    self._moved_in.add(dest)
                    self._writing.discard(dest)
                return
            name = self._name(event.src_path)
            if name is None:
                return
            if isinstance(event, FileOpenedEvent | FileModifiedEvent):
                if self._track_writes:
                    self._writing.add(name)
            elif isinstance(event, FileClosedEvent | FileClosedNoWriteEvent | FileDeletedEvent):
                self._writing.discard(name)

    def overflowed(self) -> None:
        with self._lock:
            self.overflows += 1
        self.event.set()

    def take_moved_in(self) -> set[str]:
        with self._lock:
            moved, self._moved_in = self._moved_in, set()
        return moved

    def is_writing(self, name: str) -> bool:
        with self._lock:
            return name in self._writing

    def keep_only(self, present: set[str]) -> None:
        with self._lock:
            self._writing &= present


class _WatchdogLog(logging.Handler):
    """watchdog's warnings, in the daemon's log; an inotify overflow wakes a rescan."""

    def __init__(self, wakeup: Wakeup, stopping: threading.Event) -> None:
        super().__init__(level=logging.WARNING)
        self._wakeup = wakeup
        self._stopping = stopping

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if "overflow" in message.lower():
                log.warning("inotify event queue overflowed: events were lost; rescanning inbox/")
                self._wakeup.overflowed()
            elif not self._stopping.is_set():  # watchdog 7 complains of races at stop
                log.warning("watchdog: %s", message)
        except Exception:
            self.handleError(record)


class InboxWatch:
    """The observer on every inbox; without one (``--once``) only rescans find files."""

    def __init__(
        self, inbox: str, wakeup: Wakeup, stopping: threading.Event, *, polling: bool,
        rescan_seconds: float,
    ) -> None:  # fmt: skip
        self._folders = [inbox]
        self._wakeup = wakeup
        self._stopping = stopping
        self._polling = polling
        self._rescan_seconds = rescan_seconds
        self._observer: BaseObserver | None = None
        self._failing = False

    @property
    def observer(self) -> BaseObserver | None:
        return self._observer

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        watchdog_log = logging.getLogger(_WATCHDOG_LOGGER)
        handler = _WatchdogLog(self._wakeup, self._stopping)
        saved = (watchdog_log.propagate, watchdog_log.level)
        watchdog_log.addHandler(handler)
        watchdog_log.propagate = False  # one log format on stderr: ours
        if watchdog_log.getEffectiveLevel() > logging.WARNING:
            watchdog_log.setLevel(logging.WARNING)
        self._start()
        try:
            yield
        finally:
            self._stop()
            watchdog_log.removeHandler(handler)
            watchdog_log.propagate, level = saved
            watchdog_log.setLevel(level)

    def keep_alive(self) -> None:
        """Restart the observer if its thread died. Files dropped meanwhile are found by
        the next rescan; a failure is logged once, then retried."""
        if self._healthy():
            return
        if not self._failing:
            log.warning("the inbox/ watch stopped (its observer failed): restarting")
        self._stop()
        try:
            self._start()
        except OSError as exc:
            if not self._failing:
                log.error("cannot watch inbox/ (%s): relying on rescans", exc.strerror or exc)
            self._failing = True
            return
        if self._failing:
            log.info("watching inbox/ again")
        self._failing = False

    def _start(self) -> None:
        # watchdog holds each IN_MOVED_FROM for InotifyMoveEventGrouper.delay (0.5 s) to
        # pair it with its IN_MOVED_TO, and its reader thread sleeps out that delay even
        # when the pair was found at once: a request renamed into inbox/ waited half a
        # second. Both halves of a rename inside one folder arrive in the same read, so a
        # few milliseconds pair them just as well.
        InotifyMoveEventGrouper.delay = min(InotifyMoveEventGrouper.delay, 0.01)
        observer: BaseObserver = (
            PollingObserver(timeout=max(0.1, min(1.0, self._rescan_seconds / 2)))
            if self._polling
            # Full events: a file moved in from another folder is a moved event, not a
            # created one, so it is taken at once.
            else InotifyObserver(generate_full_events=True)
        )
        for folder in self._folders:
            observer.schedule(self._wakeup, folder, recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def add(self, folder: str) -> None:
        """Watch one more inbox (a channel made while the daemon runs)."""
        self._folders.append(folder)
        if self._observer is not None:
            self._observer.schedule(self._wakeup, folder, recursive=False)

    def _stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=10)

    def _healthy(self) -> bool:
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in observer.emitters)
