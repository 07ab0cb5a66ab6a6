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
- a rescan every ``rescan_seconds`` catches what events missed (files dropped while the
  daemon was down, network file systems, a lost event), and at once after an overflow;
- a batch that raises is retried one input at a time; an input that fails again alone
  gets an ``ERRORE_INTERNO`` receipt and is quarantined: nothing stops the loop;
- a fault of the machine (a full disk, an I/O error: ``certdesk.faults``), or free space
  below the reserve, is a pause, never a decision: the daemon claims nothing more, says so
  once in its log and heartbeat, and when the fault is gone it finishes what was claimed
  exactly as a restart would (``Engine.recover()``), then goes on;
- every inbox (``inbox/``, ``state/admin/inbox/``, each channel's, opened once made) is
  listed and claimed through its descriptor; if one of them, ``outbox/`` or ``state/`` is
  no longer the folder it was, the daemon stops (exit 1);
- SIGTERM/SIGINT: the batch in hand is finished, then the daemon exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence

from watchdog.observers.api import BaseObserver

from certdesk.channels import ADMIN_CHANNEL
from certdesk.faults import MachineFault, machine_fault
from certdesk.intake import Claim, claim, list_claims
from certdesk.outbox import Outbox
from certdesk.service import Engine, Outcome

from .events import InboxWatch, Wakeup
from .folders import FolderReplaced, HomeFolders, split_key
from .heartbeat import Heartbeat
from .lock import DaemonLock
from .logs import log_outcome, printable
from .options import DaemonOptions
from .pause import Pause
from .progress import Progress
from .readiness import Readiness
from .reserve import SpaceReserve
from .upkeep import Upkeep

__all__ = ["Daemon", "DaemonOptions"]

log = logging.getLogger("certdesk.daemon")

# While claiming a backlog, the free space is measured again every this many files.
_RESERVE_CHECK_EVERY = 32

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
        outbox = Outbox.of(self.home)
        self.heartbeat = Heartbeat(outbox.heartbeat, options.heartbeat_seconds)
        self._stop = threading.Event()
        inbox = str(self.home.inbox.absolute())
        self._wakeup = Wakeup(inbox, track_writes=not options.polling)
        self._watch = InboxWatch(
            inbox, self._wakeup, self._stop,
            polling=options.polling, rescan_seconds=options.rescan_seconds,
        )  # fmt: skip
        self._watch_inbox(ADMIN_CHANNEL)
        self._readiness = Readiness(
            self._wakeup, settle_seconds=options.settle_seconds,
            write_timeout_seconds=options.write_timeout_seconds,
        )  # fmt: skip
        self._progress: Progress | None = None
        self._recovery_due = False
        self._recovery_tried = 0.0
        self._failed = False  # --once: the loop itself failed
        self._folders: HomeFolders | None = None
        self._reserve = SpaceReserve((self.home.state, self.home.outbox),
                                     options.min_free_bytes, outbox.ledger)  # fmt: skip
        self._pause = Pause(self.heartbeat, options.pause_retry_seconds)
        self._upkeep = Upkeep(engine, options, self._enter_pause)

    def stop(self, *_: object) -> None:
        self._stop.set()
        self._wakeup.event.set()

    @property
    def observer(self) -> BaseObserver | None:
        return self._watch.observer

    # -- choosing what is complete ---------------------------------------------------
    def _ready_names(self, moved_in: set[str]) -> tuple[list[str], float | None]:
        """Names to take now, and in how many seconds another may become ready."""
        scan = self._readiness.scan(self._open_folders(), moved_in)
        self.scans += 1
        self.heartbeat.scanned(scan.candidates)
        if self._progress is not None:
            waiting = scan.candidates - len(self._readiness.unclaimable)
            self._progress.grow(self._progress.done + waiting)
        return scan.ready, scan.next_check

    # -- processing ------------------------------------------------------------------
    def _open_folders(self) -> HomeFolders:
        if self._folders is None:
            store = self.engine.store
            self._folders = HomeFolders(self.home, lambda name: store.channel(name) is not None)
        return self._folders

    def _watch_inbox(self, canale: str) -> None:
        folder = str(self.home.channel_inbox(canale).absolute())
        self._wakeup.add_inbox(folder, canale)
        self._watch.add(folder)

    def _open_channels(self) -> None:
        """Take the inboxes of channels made since the last look (``certdesk canale``)."""
        names = [c.nome for c in self.engine.store.channels()]
        for canale in self._open_folders().refresh(names):
            log.info("watching the inbox of channel %s", canale)
            self._watch_inbox(canale)

    def _claim(self, key: str) -> Claim | None:
        folders = self._open_folders()
        canale, name = split_key(key)
        try:
            return claim(self.home, name, inbox_fd=folders.fd_of(canale), canale=canale)
        except OSError as exc:
            if machine_fault(exc):
                raise  # the claim folder could not be made: a pause, not this file's fault
            try:
                self._readiness.cannot_claim(key, folders.lstat(key))
            except OSError:
                return None
            log.error(
                "cannot take %s out of its inbox (%s): left in place until it changes",
                printable(key),
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
                    # The rest stays in inbox/; what was taken waits in state/work/ and
                    # is finished when the pause ends.
                    raise _Paused(fault)
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
        except Exception as exc:
            if (fault := machine_fault(exc)) is not None:
                self._enter_pause(fault)
                return outcomes
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
                log.exception("processing %s failed again, alone", printable(item.name))
                error = exc
            try:
                self.engine.finish_interrupted()
                outcomes.append(self.engine.refuse_internal(item, error))
            except Exception as exc:
                if (fault := machine_fault(exc)) is not None:
                    self._enter_pause(fault)
                    return outcomes
                log.exception("cannot refuse %s; it waits in state/work/", printable(item.name))
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
            log_outcome(outcome)
            self.heartbeat.count(outcome)
        if self._progress is not None:
            self._progress.advance(len(outcomes))

    # -- pauses: a fault of the machine -----------------------------------------------
    def _enter_pause(self, fault: MachineFault) -> None:
        self._pause.begin(fault)

    def _try_resume(self) -> None:
        """When the reserve is back, finish what waits in state/work/ as a restart would;
        the pause ends if that meets no fault."""
        if not self._pause.attempt_due() or self._reserve.shortfall() is not None:
            return
        self._recover()
        if not self._pause.met_again:
            self._pause.end()

    @property
    def paused(self) -> MachineFault | None:
        return self._pause.fault

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
            with contextlib.ExitStack() as watching:
                if not self.options.once:
                    watching.enter_context(self._watch.running())
                self.heartbeat.write(state="paused" if self._pause.fault else "running")
                self._loop()
        finally:
            if self._progress is not None:
                self._progress.close()
        if self.options.once and (
            self._recovery_due or self._failed or self._readiness.unclaimable or self._pause.fault
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
            if options.once and self._pause.fault is not None:
                return  # --once cannot wait for the fault to go: exit 1, inputs kept
            if busy:
                continue  # more may have arrived while processing
            if options.once:
                if next_check is None:
                    self._finish_once()
                    return
                self._stop.wait(min(next_check, 0.1))
                continue
            self._rest(next_check)

    def _rest(self, next_check: float | None) -> None:
        """Nothing ready: one slice of idle work, or else wait for a wake-up."""
        if self._pause.fault is None:
            self._upkeep.catch_up_columnar()  # nothing to do: the panels see all now
            if self._upkeep.idle_work():
                return  # one slice done: look at inbox/ before the next
        timeout = min(self.options.rescan_seconds, self.heartbeat.every)
        if next_check is not None:
            timeout = min(timeout, next_check)
        if not self._stop.is_set():  # a stop() whose wake-up the step's clear() undid
            self._wakeup.event.wait(max(timeout, 0.01))

    def _finish_once(self) -> None:
        """--once leaves nothing pending: expiry, CRL, the columnar ledger, OCSP too."""
        self._upkeep.periodic()
        self._upkeep.catch_up_columnar()
        while not self._stop.is_set() and self._upkeep.idle_work():
            pass

    def _step(self) -> tuple[bool, float | None]:
        """One turn: look at inbox/, process what is ready, do the periodic work.
        Returns whether anything was ready, and when a waiting file may become ready."""
        options = self.options
        self._open_channels()
        self._open_folders().check()
        if not options.once:
            self._watch.keep_alive()
        self._wakeup.event.clear()
        if self._pause.fault is not None:
            self._try_resume()
            if self._pause.fault is not None:
                self.heartbeat.maybe_write()
                return False, options.pause_retry_seconds
        ready, next_check = self._ready_names(self._wakeup.take_moved_in())
        if ready:
            self._process(ready)
        now = time.monotonic()
        if self._recovery_due and now - self._recovery_tried >= options.recovery_retry_seconds:
            self._recover()
        every = options.busy_periodic_seconds if ready else options.rescan_seconds
        if now - self._upkeep.last_periodic >= every:
            self._upkeep.periodic()
            self.heartbeat.avvisi = self.engine.warnings  # EMITTENTE_IN_SCADENZA
        if ready and now - self._upkeep.last_columnar >= options.columnar_seconds:
            self._upkeep.catch_up_columnar()
        self.heartbeat.maybe_write()
        return bool(ready), next_check
