"""The daemon's loop: filesystem events wake it, the inbox on disk decides what to do.

- at start: ``Engine.recover()`` finishes what a crash interrupted, then the backlog;
- every wake-up (an event, the periodic rescan, an inotify queue overflow) lists
  ``inbox/`` and takes what is complete:
  - an entry renamed into ``inbox/`` (a moved event), or anything that is not a regular
    file (a symlink, FIFO, device or folder is refused without waiting): at once;
  - a regular file: once its inode, size and mtime have been stable for
    ``settle_seconds``; with inotify, a file opened or modified and not yet closed is
    waited for, for at most ``write_timeout_seconds`` without change;
  - names starting with ``.`` or ending in ``.tmp``/``.part``: never (writers' names);
- a rescan every ``rescan_seconds`` catches whatever events missed (files dropped while
  the daemon was down, network file systems, a lost event); an inotify queue overflow
  triggers one at once;
- a batch that raises is retried one input at a time; an input that fails again alone
  gets an ``ERRORE_INTERNO`` receipt and is quarantined: nothing stops the loop;
- a fault of the machine (a full disk, an I/O error: ``certdesk.faults``), or free space
  below the reserve, is a pause, never a decision: the daemon claims nothing more, says so
  once in its log and heartbeat, and when the fault is gone it finishes what was claimed
  exactly as a restart would (``Engine.recover()``), then goes on;
- ``inbox/`` is listed and claimed through the descriptor opened at start; if ``inbox/``,
  ``outbox/`` or ``state/`` is no longer the folder it was, the daemon stops (exit 1);
- SIGTERM/SIGINT: the batch in hand is finished, then the daemon exits 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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

from certdesk.errors import CertdeskError
from certdesk.faults import MachineFault, machine_fault
from certdesk.intake import Claim, claim, list_claims
from certdesk.service import Engine, Outcome

from .folders import FolderReplaced, HomeFolders
from .heartbeat import Heartbeat
from .lock import DaemonLock
from .progress import Progress
from .reserve import SpaceReserve

__all__ = ["Daemon", "DaemonOptions", "run_daemon"]

log = logging.getLogger("certdesk.daemon")

# While claiming a backlog, the free space is measured again every this many files.
_RESERVE_CHECK_EVERY = 32

# watchdog 7 reports an inotify IN_Q_OVERFLOW only as a warning on this logger (and by
# rebuilding its own recursive watches): no event reaches a handler. See
# https://github.com/gorakhargosh/watchdog/issues/654. The daemon listens to it.
_WATCHDOG_LOGGER = "watchdog"


@dataclass(frozen=True)
class DaemonOptions:
    once: bool = False
    polling: bool = False
    rescan_seconds: float = 2.0
    settle_seconds: float = 0.5
    heartbeat_seconds: float = 2.0
    progress: bool = False
    # A file opened for writing (inotify) is taken anyway after this long without change:
    # a lost close event or a writer that never closes must not hold it forever.
    write_timeout_seconds: float = 60.0
    # During a long backlog, expiry and CRL work still runs this often (OCSP waits for idle).
    # Also how long idle work rests after it failed.
    busy_periodic_seconds: float = 60.0
    # After a failure the store could not even record, recovery is retried this often.
    recovery_retry_seconds: float = 10.0
    # Below this much free space (plus ledger.csv's size) nothing new is claimed.
    min_free_bytes: int = 64 * 2**20
    # While paused, whether the fault is gone is tried this often.
    pause_retry_seconds: float = 2.0


def _printable(name: str) -> str:
    """A file name for a text log line: quoted, newlines and control characters escaped."""
    return json.dumps(name, ensure_ascii=False)


class _Wakeup(FileSystemEventHandler):
    """Turns events into hints about names; never touches the files itself."""

    def __init__(self, inbox: str, *, track_writes: bool) -> None:
        self._inbox = inbox
        self._track_writes = track_writes
        self._lock = threading.Lock()
        self._moved_in: set[str] = set()
        self._writing: set[str] = set()
        self.overflows = 0
        self.event = threading.Event()

    def _name(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        if not text:
            return None
        folder, name = os.path.split(text)
        return name if os.path.abspath(folder) == self._inbox else None

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

    def __init__(self, wakeup: _Wakeup, stopping: threading.Event) -> None:
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


@dataclass
class _Sighting:
    key: tuple[int, int, int]  # inode, size, mtime_ns
    since: float  # monotonic time the key was first seen


class _Paused(Exception):
    """Raised through the engine by the feed of claims: the reserve was reached."""

    def __init__(self, fault: MachineFault) -> None:
        super().__init__(fault.message)
        self.fault = fault


class Daemon:
    def __init__(self, engine: Engine, options: DaemonOptions) -> None:
        self.engine = engine
        self.options = options
        self.home = engine.home
        self.scans = 0  # completed scans of inbox/ (tests wait on it)
        self.heartbeat = Heartbeat(self.home.outbox / "daemon.json", options.heartbeat_seconds)
        self._stop = threading.Event()
        self._inbox = str(self.home.inbox.absolute())
        self._wakeup = _Wakeup(self._inbox, track_writes=not options.polling)
        self._seen: dict[str, _Sighting] = {}
        self._unclaimable: dict[str, tuple[int, int, int]] = {}
        self._progress: Progress | None = None
        self._observer: BaseObserver | None = None
        self._watched: tuple[int, int] | None = None  # (st_dev, st_ino) of the watched inbox
        self._recovery_due = False
        self._recovery_tried = 0.0
        self._last_periodic = time.monotonic()
        self._idle_paused_until = 0.0
        self._watch_failing = False
        self._failed = False  # --once: the loop itself failed
        self._folders: HomeFolders | None = None
        self._reserve = SpaceReserve(
            (self.home.state, self.home.outbox),
            options.min_free_bytes,
            self.home.outbox / "ledger.csv",
        )
        self._pause: MachineFault | None = None
        self._faulted = False  # a fault was met since the last resume attempt began
        self._paused_at = 0.0
        self._pause_tried = 0.0

    def stop(self, *_: object) -> None:
        self._stop.set()
        self._wakeup.event.set()

    @property
    def observer(self) -> BaseObserver | None:
        return self._observer

    # -- choosing what is complete ---------------------------------------------------
    def _ready_names(self, moved_in: set[str]) -> tuple[list[str], float | None]:
        """Names to take now, and in how many seconds another may become ready."""
        now, wall = time.monotonic(), time.time()
        folders = self._open_folders()
        names = folders.candidates()
        present = set(names)
        ready: list[str] = []
        next_check: float | None = None
        for name in names:
            try:
                info = folders.lstat(name)
            except OSError:
                continue  # taken or removed meanwhile
            key = (info.st_ino, info.st_size, info.st_mtime_ns)
            if name in self._unclaimable:
                if self._unclaimable[name] == key:
                    continue
                del self._unclaimable[name]  # changed: try again
            if name in moved_in or not stat.S_ISREG(info.st_mode):
                ready.append(name)
                self._seen.pop(name, None)
                continue
            sighting = self._seen.get(name)
            if sighting is None or sighting.key != key:
                sighting = self._seen[name] = _Sighting(key, now)
            unchanged = now - sighting.since
            if self._wakeup.is_writing(name) and info.st_nlink == 1:
                wait = self.options.write_timeout_seconds - unchanged
            else:
                age = wall - info.st_mtime_ns / 1e9  # negative for an mtime in the future
                wait = self.options.settle_seconds - max(unchanged, age)
            if wait <= 0:
                ready.append(name)
                del self._seen[name]
            else:
                next_check = wait if next_check is None else min(next_check, wait)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        for gone in set(self._unclaimable) - present:
            del self._unclaimable[gone]
        self._wakeup.keep_only(present)
        self.scans += 1
        self.heartbeat.scanned(len(names))
        if self._progress is not None:
            self._progress.grow(self._progress.done + len(names) - len(self._unclaimable))
        return ready, next_check

    # -- processing ------------------------------------------------------------------
    def _open_folders(self) -> HomeFolders:
        if self._folders is None:
            self._folders = HomeFolders(self.home)
        return self._folders

    def _claim(self, name: str) -> Claim | None:
        folders = self._open_folders()
        try:
            return claim(self.home, name, inbox_fd=folders.inbox_fd)
        except OSError as exc:
            if machine_fault(exc):
                raise  # the claim folder could not be made: a pause, not this file's fault
            try:
                info = folders.lstat(name)
                self._unclaimable[name] = (info.st_ino, info.st_size, info.st_mtime_ns)
            except OSError:
                return None
            log.error(
                "cannot take %s out of inbox/ (%s): left in place until it changes",
                _printable(name),
                exc.strerror or exc,
            )
            return None

    def _process(self, names: Sequence[str]) -> None:
        """Claim and process ``names`` as one pipeline: each file is taken out of inbox/
        only when the engine wants the next chunk, so a stop request leaves the rest
        untouched, and outcomes are reported chunk by chunk."""
        taken: list[Claim] = []
        reported: set[str] = set()

        def claims() -> Iterator[Claim]:
            for count, name in enumerate(names):
                if self._stop.is_set():
                    return  # SIGTERM/SIGINT: what is in hand finishes; the rest waits
                if count % _RESERVE_CHECK_EVERY == 0 and (fault := self._reserve.shortfall()):
                    raise _Paused(fault)  # what is in hand finishes; the rest stays in inbox/
                if (item := self._claim(name)) is not None:
                    taken.append(item)
                    yield item

        def report(outcomes: list[Outcome]) -> None:
            reported.update(outcome.file for outcome in outcomes)
            self._report(outcomes)
            self.heartbeat.maybe_write()

        try:
            self.engine.process(claims(), report=report)
        except _Paused as paused:
            self._enter_pause(paused.fault)
        except Exception as exc:
            if (fault := machine_fault(exc)) is not None:
                self._enter_pause(fault)  # the claims wait in state/work/ for the resume
            else:
                log.exception(
                    "processing %d inputs failed; retrying them one by one",
                    len(taken) - len(reported),
                )
                self._report(self._retry_one_by_one([c for c in taken if c.name not in reported]))
        self.heartbeat.maybe_write()

    def _retry_one_by_one(self, claims: list[Claim]) -> list[Outcome]:
        """After a failed batch: finish what it committed, then each input alone; an input
        that fails alone too gets an ERRORE_INTERNO receipt and is quarantined."""
        outcomes: list[Outcome] = []
        try:
            finished = self.engine.finish_interrupted()
        except Exception:
            log.exception("cannot finish the failed batch; its inputs wait in state/work/")
            self._recovery_due = True
            return outcomes
        names = {item.name for item in claims}
        outcomes.extend(o for o in finished if o.file not in names)  # older leftovers
        for item in claims:
            if (outcome := self.engine.outcome_of(item)) is not None:
                if not (self.home.work / item.claim).exists():
                    # Finished by the failed attempt before it raised, or just above.
                    outcomes.append(outcome)
                continue  # else done before a crash, not yet archived: left to recover()
            if not (self.home.work / item.claim).exists():
                continue
            try:
                outcomes.extend(self.engine.process([item]))
                continue
            except Exception as exc:
                if (fault := machine_fault(exc)) is not None:
                    self._enter_pause(fault)  # this one and the rest wait for the resume
                    return outcomes
                log.exception("processing %s failed again, alone", _printable(item.name))
                error = exc
            try:
                self.engine.finish_interrupted()
                outcomes.append(self.engine.refuse_internal(item, error))
            except Exception as exc:
                if (fault := machine_fault(exc)) is not None:
                    self._enter_pause(fault)
                    return outcomes
                log.exception("cannot refuse %s; it waits in state/work/", _printable(item.name))
                self._recovery_due = True
        return outcomes

    def _recover(self) -> None:
        """``Engine.recover()``; if it fails, the inputs in state/work/ one by one."""
        self._recovery_tried = time.monotonic()
        self._recovery_due = False
        try:
            outcomes = self.engine.recover()
        except Exception as exc:
            if (fault := machine_fault(exc)) is not None:
                self._enter_pause(fault)
                return
            log.exception("recovery failed; finishing the inputs in state/work/ one by one")
            outcomes = self._retry_one_by_one(list_claims(self.home))
            if list_claims(self.home):
                self._recovery_due = True
        self._report(outcomes)
        if self._recovery_due:
            log.error(
                "inputs wait in state/work/; recovery is retried in %.0f s",
                self.options.recovery_retry_seconds,
            )

    def _report(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        if self._progress is not None:
            self._progress.clear()
        for outcome in outcomes:
            self._log_outcome(outcome)
            self.heartbeat.count(outcome)
        if self._progress is not None:
            self._progress.advance(len(outcomes))

    @staticmethod
    def _log_outcome(outcome: Outcome) -> None:
        log.info(
            "%s tipo=%s esito=%s id_operazione=%s codice=%s",
            _printable(outcome.file),
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

    # -- pauses: a fault of the machine -----------------------------------------------
    def _enter_pause(self, fault: MachineFault) -> None:
        """Stop taking inputs until ``fault`` is gone; said once, however often it recurs."""
        self._faulted = True
        if self._pause is not None:
            return
        self._pause = fault
        self._paused_at = self._pause_tried = time.monotonic()
        log.warning(
            "paused: %s: %s. Nothing new is taken from inbox/ and nothing is decided; what "
            "was taken waits in state/work/ and is finished once this is fixed",
            fault.code,
            fault.message,
            extra={"codice": fault.code},
        )
        self.heartbeat.paused(fault)

    def _try_resume(self) -> None:
        """Every ``pause_retry_seconds``: when the reserve is back, finish what waits in
        state/work/ as a restart would; the pause ends if that meets no fault."""
        now = time.monotonic()
        if now - self._pause_tried < self.options.pause_retry_seconds:
            return
        self._pause_tried = now
        if self._reserve.shortfall() is not None:
            return
        self._faulted = False
        self._recover()
        if self._faulted or self._pause is None:
            return
        log.info(
            "resumed after %.0f s: %s is over", time.monotonic() - self._paused_at, self._pause.code
        )
        self._pause = None
        self.heartbeat.resumed()

    @property
    def paused(self) -> MachineFault | None:
        return self._pause

    def _periodic(self) -> None:
        try:
            self.engine.periodic()
        except Exception as exc:
            if (fault := machine_fault(exc)) is not None:
                self._enter_pause(fault)
                return
            log.exception("periodic work (expiry, CRL) failed")

    def _idle_work(self) -> bool:
        """One short slice of idle work (OCSP pre-signing, CRL entries), between two looks
        at inbox/; False when nothing is due (or it failed: then it rests until the next
        periodic pass)."""
        if time.monotonic() < self._idle_paused_until:
            return False
        try:
            return self.engine.idle_work(ahead=not self.options.once) > 0
        except Exception as exc:
            if (fault := machine_fault(exc)) is not None:
                self._enter_pause(fault)
                return False
            log.exception("idle work (OCSP responses, CRL entries) failed; trying again later")
            self._idle_paused_until = time.monotonic() + self.options.busy_periodic_seconds
            return False

    # -- the observer ----------------------------------------------------------------
    def _start_observer(self) -> None:
        # watchdog holds each IN_MOVED_FROM for InotifyMoveEventGrouper.delay (0.5 s) to
        # pair it with its IN_MOVED_TO, and its reader thread sleeps out that delay even
        # when the pair was found at once: a request renamed into inbox/ waited half a
        # second (drop -> receipt p50 ~450 ms). Both halves of a rename inside one folder
        # arrive in the same read, so a few milliseconds pair them just as well.
        InotifyMoveEventGrouper.delay = min(InotifyMoveEventGrouper.delay, 0.01)
        self.home.inbox.mkdir(parents=True, exist_ok=True)
        info = os.stat(self.home.inbox)
        observer: BaseObserver = (
            PollingObserver(timeout=max(0.1, min(1.0, self.options.rescan_seconds / 2)))
            if self.options.polling
            # Full events: a file moved in from another folder is a moved event, not a
            # created one, so it is taken at once.
            else InotifyObserver(generate_full_events=True)
        )
        observer.schedule(self._wakeup, self._inbox, recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._watched = (info.st_dev, info.st_ino)

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=10)

    def _observer_healthy(self) -> bool:
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        if not all(emitter.is_alive() for emitter in observer.emitters):
            return False
        try:
            info = os.stat(self.home.inbox)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._watched

    @contextlib.contextmanager
    def _observing(self) -> Iterator[None]:
        if self.options.once:
            yield
            return
        watchdog_log = logging.getLogger(_WATCHDOG_LOGGER)
        handler = _WatchdogLog(self._wakeup, self._stop)
        saved = (watchdog_log.propagate, watchdog_log.level)
        watchdog_log.addHandler(handler)
        watchdog_log.propagate = False  # one log format on stderr: ours
        if watchdog_log.getEffectiveLevel() > logging.WARNING:
            watchdog_log.setLevel(logging.WARNING)
        self._start_observer()
        try:
            yield
        finally:
            self._stop_observer()
            watchdog_log.removeHandler(handler)
            watchdog_log.propagate, level = saved
            watchdog_log.setLevel(level)

    def _keep_observing(self) -> None:
        """Restart the observer if its thread died (inbox/ itself is the same: ``_step``
        checks it first). Files dropped meanwhile are found by the next rescan; a failure
        is logged once, then retried."""
        if self.options.once or self._observer_healthy():
            return
        if not self._watch_failing:
            log.warning("the inbox/ watch stopped (folder replaced or observer failed): restarting")
        self._stop_observer()
        try:
            self._start_observer()
        except OSError as exc:
            if not self._watch_failing:
                log.error("cannot watch inbox/ (%s): relying on rescans", exc.strerror or exc)
            self._watch_failing = True
            return
        if self._watch_failing:
            log.info("watching inbox/ again")
        self._watch_failing = False

    # -- the loop --------------------------------------------------------------------
    def run(self) -> int:
        lock = DaemonLock(self.home.lock_file)
        lock.acquire()
        replaced = False
        try:
            self._open_folders()
            return self._run_locked()
        except FolderReplaced as exc:
            log.error("%s: %s", exc.code, exc.message)
            replaced = True
            raise
        finally:
            if not replaced:  # outbox/ may be someone else's folder now
                self.heartbeat.write(state="stopped")
            if self._folders is not None:
                self._folders.close()
            lock.release()

    def _run_locked(self) -> int:
        self.heartbeat.write(state="starting")
        self._recover()
        if self.options.progress:
            self._progress = Progress(len(self._open_folders().candidates()))
        try:
            with self._observing():
                self.heartbeat.write(state="paused" if self._pause else "running")
                self._loop()
        finally:
            if self._progress is not None:
                self._progress.close()
        if self.options.once and (
            self._recovery_due or self._failed or self._unclaimable or self._pause
        ):
            log.error("some inputs could not be finished: they wait in inbox/ or state/work/")
            return 1
        return 0

    def _loop(self) -> None:
        options = self.options
        while not self._stop.is_set():
            try:
                busy, next_check = self._step()
            except FolderReplaced:
                raise  # the home is not what the daemon started on: stop
            except Exception:
                # Whatever went wrong (inbox/ unreadable, a bug), the daemon goes on.
                log.exception("the loop failed; trying again in %.1f s", options.rescan_seconds)
                if options.once:
                    self._failed = True
                    return
                self._stop.wait(options.rescan_seconds)
                continue
            if options.once and self._pause is not None:
                return  # --once cannot wait for the fault to go: exit 1, inputs kept
            if busy:
                continue  # more may have arrived while processing
            if options.once:
                if next_check is None:
                    self._periodic()  # --once leaves nothing pending: OCSP too
                    while not self._stop.is_set() and self._idle_work():
                        pass
                    return
                self._stop.wait(min(next_check, 0.1))
                continue
            if self._pause is None and self._idle_work():
                continue  # one slice done: look at inbox/ before the next
            timeout = min(options.rescan_seconds, self.heartbeat.every)
            if next_check is not None:
                timeout = min(timeout, next_check)
            self._wakeup.event.wait(max(timeout, 0.01))

    def _step(self) -> tuple[bool, float | None]:
        """One turn: look at inbox/, process what is ready, do the periodic work.
        Returns whether anything was ready, and when a waiting file may become ready."""
        options = self.options
        self._open_folders().check()
        self._keep_observing()
        self._wakeup.event.clear()
        if self._pause is not None:
            self._try_resume()
            if self._pause is not None:
                self.heartbeat.maybe_write()
                return False, options.pause_retry_seconds
        ready, next_check = self._ready_names(self._wakeup.take_moved_in())
        if ready:
            self._process(ready)
        now = time.monotonic()
        if self._recovery_due and now - self._recovery_tried >= options.recovery_retry_seconds:
            self._recover()
        every = options.busy_periodic_seconds if ready else options.rescan_seconds
        if now - self._last_periodic >= every:
            self._periodic()
            self._last_periodic = time.monotonic()
        self.heartbeat.maybe_write()
        return bool(ready), next_check


def run_daemon(engine: Engine, options: DaemonOptions) -> int:
    """Run the daemon in the main thread: SIGTERM/SIGINT stop it after the batch in hand."""
    daemon = Daemon(engine, options)
    previous = {
        sig: signal.signal(sig, daemon.stop) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return daemon.run()
    except CertdeskError as exc:
        print(f"certdesk: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close()
