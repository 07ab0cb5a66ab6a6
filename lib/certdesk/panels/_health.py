"""Is the daemon there, paused, or gone: read from ``outbox/daemon.json`` for the panels."""

from __future__ import annotations

import html
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..frame import ROME
from ..outbox import Outbox
from . import _clock

__all__ = [
    "HEARTBEAT_STALE_SECONDS",
    "DaemonHealth",
    "DaemonPause",
    "daemon_health",
    "health_banner",
]


#: A heartbeat older than this means the daemon is gone (it refreshes it every <= 5 s).
HEARTBEAT_STALE_SECONDS = 20.0
#: Reads of a heartbeat that is not valid JSON before calling it unreadable (see _load_beat).
HEARTBEAT_READ_ATTEMPTS = 3


_PAUSE_CAUSES = {
    "SPAZIO_INSUFFICIENTE": "spazio su disco insufficiente",
    "GUASTO_MACCHINA": "guasto della macchina: errore del disco o di I/O",
    "TOKEN_NON_DISPONIBILE": "token PKCS#11 della CA non disponibile",
    "PIN_ERRATO": "PIN del token PKCS#11 rifiutato: va corretto prima di riprendere",
}


@dataclass(frozen=True)
class DaemonPause:
    """Why and since when a daemon takes no new inputs (``pausa`` in ``outbox/daemon.json``).

    A paused daemon is alive (it keeps its heartbeat) but leaves ``inbox/`` alone until
    the machine is fit again (a full disk freed, an I/O error gone).
    """

    codice: str
    messaggio: str
    dal: datetime | None

    @property
    def cause(self) -> str:
        """The cause in Italian; an unknown code (a newer daemon) as it is."""
        if not self.codice:
            return "causa non indicata"
        return _PAUSE_CAUSES.get(self.codice, self.codice)


@dataclass(frozen=True)
class DaemonHealth:
    """Whether the daemon answers, read from ``outbox/daemon.json``.

    ``pause`` is set when the last heartbeat said ``paused``: the daemon may be alive and
    still not process anything.
    """

    alive: bool
    reason: str
    pid: int | None = None
    updated: datetime | None = None
    version: str | None = None
    pause: DaemonPause | None = None
    # (codice, messaggio) of what a working daemon warns of (``avvisi`` in daemon.json):
    # EMITTENTE_IN_SCADENZA, a rollover is due.
    warnings: tuple[tuple[str, str], ...] = ()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def _utc_time(value: object) -> datetime | None:
    """An ISO 8601 time of the heartbeat, aware (a naive one is UTC); None when not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _load_beat(path: Path) -> object:
    """The heartbeat's JSON, read again when caught half written.

    On a full disk the daemon rewrites ``daemon.json`` in place (a new file would need
    blocks it has not got), so a read may meet the new text followed by the old one's tail.
    """
    for _ in range(HEARTBEAT_READ_ATTEMPTS - 1):
        try:
            loaded: object = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # UnicodeDecodeError included
            time.sleep(0.05)
        else:
            return loaded
    return json.loads(path.read_text(encoding="utf-8"))


def _pause(beat: dict[str, Any]) -> DaemonPause | None:
    """The pause a heartbeat reports: None unless its state is ``paused``.

    ``state`` decides: an older heartbeat has no ``pausa``, and a paused one that lacks it
    is still paused, for a cause it does not say.
    """
    if beat.get("state") != "paused":
        return None
    pausa = beat.get("pausa")
    if not isinstance(pausa, dict):
        pausa = {}
    return DaemonPause(
        codice=str(pausa.get("codice") or ""),
        messaggio=str(pausa.get("messaggio") or ""),
        dal=_utc_time(pausa.get("dal")),
    )


def daemon_health(home: Path, *, now: datetime | None = None) -> DaemonHealth:
    """Alive when the heartbeat says running (or paused), is younger than 20 s, and its
    pid exists; ``pause`` says why a paused one takes no new inputs.

    The pid is checked only on the daemon's own host (a home on a network share may be
    watched from another machine).
    """
    path = Outbox.of(home).heartbeat
    unreadable = "il battito del daemon (outbox/daemon.json) non è leggibile"
    try:
        loaded = _load_beat(path)
    except FileNotFoundError:
        return DaemonHealth(False, "il daemon non è mai stato avviato su questa cartella")
    except (OSError, ValueError):
        return DaemonHealth(False, unreadable)
    if not isinstance(loaded, dict):  # valid JSON, but not a heartbeat
        return DaemonHealth(False, unreadable)
    beat: dict[str, Any] = loaded
    pid = beat.get("pid") if isinstance(beat.get("pid"), int) else None
    version = str(beat["version"]) if beat.get("version") is not None else None
    updated = _utc_time(beat.get("updated"))
    pause = _pause(beat)
    if beat.get("state") == "stopped":
        return DaemonHealth(False, "il daemon è stato fermato", pid, updated, version)
    if updated is None:
        return DaemonHealth(False, "il battito del daemon non ha un orario", pid, updated, version,
                            pause)
    age = ((now or _clock.now()) - updated).total_seconds()
    if age > HEARTBEAT_STALE_SECONDS:
        return DaemonHealth(False, f"il daemon non dà segni di vita da {int(age)} s", pid,
                            updated, version, pause)
    host = beat.get("host")
    same_host = host is None or host == socket.gethostname()
    if pid is not None and same_host and not _pid_exists(pid):
        return DaemonHealth(False, f"il processo del daemon (pid {pid}) non esiste più", pid,
                            updated, version, pause)
    if pause is not None:
        return DaemonHealth(True, f"il daemon è in pausa ({pause.cause})", pid, updated,
                            version, pause)
    return DaemonHealth(True, "il daemon è attivo", pid, updated, version,
                        warnings=_warnings(beat))


def _warnings(beat: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    avvisi = beat.get("avvisi")
    if not isinstance(avvisi, list):  # an older daemon's heartbeat has none
        return ()
    return tuple((str(a.get("codice") or ""), str(a.get("messaggio") or ""))
                 for a in avvisi if isinstance(a, dict))  # fmt: skip


def health_banner(health: DaemonHealth) -> str:
    """A one-line HTML banner: green when the daemon answers, a warning otherwise.

    A paused daemon answers but decides nothing: an amber warning with its cause.
    """
    if health.alive and health.pause is not None:
        return _pause_banner(health.pause)
    if health.alive:
        when = health.updated.astimezone(ROME).strftime("%H:%M:%S") if health.updated else ""
        return (
            '<div class="certdesk-daemon certdesk-daemon-ok" style="color:#1b5e20">'
            f"● Daemon attivo (pid {health.pid}, ultimo segnale alle {when})</div>"
            + "".join(_warning_banner(code, text) for code, text in health.warnings)
        )
    # a daemon that paused for a full disk may then fail to write even its heartbeat
    last = f" L'ultimo battito diceva: {_pause_text(health.pause)}." if health.pause else ""
    return (
        '<div class="certdesk-daemon certdesk-daemon-ko" style="color:#8a1c1c;'
        'background:#fdecea;padding:4px 8px;border-radius:4px">'
        f"⚠ Daemon non attivo: {html.escape(health.reason)}. Le richieste restano in "
        "<code>inbox/</code> e saranno elaborate quando il daemon ripartirà "
        f"(<code>make run</code>).{last}</div>"
    )


def _warning_banner(code: str, text: str) -> str:
    return (
        '<div class="certdesk-daemon certdesk-daemon-warning" style="color:#8a6d00;'
        'background:#fff3cd;padding:4px 8px;border-radius:4px">'
        f"⚠ <code>{html.escape(code)}</code>: {html.escape(text)}</div>"
    )


def _pause_text(pause: DaemonPause) -> str:
    """E.g. ``in pausa dal 27/11/2026 13:00 (spazio su disco insufficiente)``, as HTML."""
    since = f" dal {pause.dal.astimezone(ROME).strftime('%d/%m/%Y %H:%M')}" if pause.dal else ""
    return f"in pausa{since} ({html.escape(pause.cause)})"


def _pause_banner(pause: DaemonPause) -> str:
    detail = ""
    if pause.messaggio:
        code = f"<code>{html.escape(pause.codice)}</code>: " if pause.codice else ""
        detail = (f'<br><span class="certdesk-daemon-pause-detail">{code}'
                  f"{html.escape(pause.messaggio)}</span>")
    return (
        '<div class="certdesk-daemon certdesk-daemon-paused" style="color:#8a6d00;'
        'background:#fff3cd;padding:4px 8px;border-radius:4px">'
        f"⚠ Il daemon è {_pause_text(pause)}: le richieste restano in attesa e saranno "
        f"elaborate alla ripresa.{detail}</div>"
    )


