"""What the three panels share: the home, the daemon's heartbeat, HTML bits, a waiter.

Nothing here signs or changes state: the panels read ``outbox/`` and write requests into
``inbox/`` through :mod:`certdesk.client`, exactly as any other client does.
"""

from __future__ import annotations

import base64
import html
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import CertdeskError
from ..frame import ROME, empty_ledger, load_ledger
from ..outbox import Outbox

__all__ = [
    "DaemonHealth",
    "DaemonPause",
    "Waiter",
    "daemon_health",
    "data_link",
    "health_banner",
    "notebook_home",
    "table_html",
]

#: A heartbeat older than this means the daemon is gone (it refreshes it every <= 5 s).
HEARTBEAT_STALE_SECONDS = 20.0
#: Reads of a heartbeat that is not valid JSON before calling it unreadable (see _load_beat).
HEARTBEAT_READ_ATTEMPTS = 3


def _now() -> datetime:
    """The one clock seam of the panels (patched in tests)."""
    return datetime.now(UTC)


def notebook_home(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The certdesk home a notebook works on.

    ``CERTDESK_HOME`` when set (``python -m certdesk.webapp`` always sets it). Otherwise
    the repository root: Jupyter, Voila and nbclient (given the notebook's path) start the
    kernel in the notebook's folder, ``notebooks/``, whose parent is the home. A kernel
    started anywhere else uses its working directory, like the ``certdesk`` CLI.
    """
    env = os.environ.get("CERTDESK_HOME", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    if here.name == "notebooks":
        return here.parent
    return here


#: Why a daemon pauses (``pausa.codice`` in its heartbeat), as the panels say it.
_PAUSE_CAUSES = {
    "SPAZIO_INSUFFICIENTE": "spazio su disco insufficiente",
    "GUASTO_MACCHINA": "guasto della macchina: errore del disco o di I/O",
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
    age = ((now or _now()) - updated).total_seconds()
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
    return DaemonHealth(True, "il daemon è attivo", pid, updated, version)


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


def esc(value: object) -> str:
    """HTML-escape anything for display; missing values are empty."""
    if value is None:
        return ""
    text = str(value)
    if text in ("<NA>", "NaT", "nan"):
        return ""
    return html.escape(text)


def table_html(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    css_class: str,
    row_classes: Sequence[str] | None = None,
) -> str:
    """A plain HTML table with escaped cells; ``row_classes`` style single rows."""
    head = "".join(f'<th style="text-align:left;padding:2px 8px">{esc(h)}</th>' for h in headers)
    body = []
    for i, row in enumerate(rows):
        extra = row_classes[i] if row_classes is not None else ""
        style = ' style="background:#fff3cd"' if "in-scadenza" in extra else ""
        cells = "".join(f'<td style="padding:2px 8px">{esc(c)}</td>' for c in row)
        body.append(f'<tr class="{esc(extra)}"{style}>{cells}</tr>')
    return (
        f'<table class="{esc(css_class)}" style="border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def data_link(data: bytes, *, filename: str, mime: str, text: str, css_class: str) -> str:
    """An ``<a download>`` carrying ``data`` inline: works in Jupyter and in Voila alike.

    Voila serves no file of the home (and must not: ``state/`` is private), so the panel
    hands the browser the bytes it already read.
    """
    payload = base64.b64encode(data).decode("ascii")
    return (
        f'<a class="{esc(css_class)}" download="{esc(filename)}" '
        f'href="data:{esc(mime)};base64,{payload}" style="{_LINK_STYLE}">{esc(text)}</a>'
    )


# Voila's page resets link styles: make the download look like what it is, a button
_LINK_STYLE = ("display:inline-block;padding:2px 10px;border-radius:3px;background:#1565c0;"
               "color:#ffffff;text-decoration:none")


class Waiter:
    """Runs one job at a time in a background thread, so the kernel keeps serving widgets.

    A panel's button handler returns at once; the job polls ``outbox/`` and updates the
    widgets when the daemon answers. Tests call :meth:`join` instead of sleeping.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, job: Callable[[], None], on_error: Callable[[BaseException], None]) -> bool:
        """Start ``job`` unless one is running; False when busy."""
        with self._lock:
            if self.busy:
                return False

            def run() -> None:
                try:
                    job()
                except BaseException as exc:  # shown in the panel, never lost in a thread
                    self.error = exc
                    on_error(exc)

            self.error = None
            self._thread = threading.Thread(target=run, name=self._name, daemon=True)
            self._thread.start()
            return True

    def join(self, timeout: float) -> bool:
        """Wait for the running job; True when none is left running."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()


def poll(
    check: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.2,
    tick: Callable[[float], None] | None = None,
) -> Any:
    """Call ``check`` until it returns something not None, or ``timeout`` passes (None)."""
    start = time.monotonic()
    while True:
        found = check()
        if found is not None:
            return found
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            return None
        if tick is not None:
            tick(elapsed)
        time.sleep(min(interval, max(0.0, timeout - elapsed)))


def read_receipt(path: Path) -> dict[str, Any] | None:
    """A receipt once it exists (receipts appear atomically), else None."""
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return loaded


def errors_html(receipt: dict[str, Any]) -> str:
    """The refusal reasons of a KO receipt: code and message, one per line."""
    errori = receipt.get("errori") or []
    items = []
    for err in errori:
        if isinstance(err, dict):
            items.append(
                f'<li><code class="certdesk-error-code">{esc(err.get("codice"))}</code>: '
                f"{esc(err.get('messaggio'))}</li>"
            )
        else:
            items.append(f"<li>{esc(err)}</li>")
    if not items:
        items.append("<li>nessun motivo indicato dal daemon</li>")
    return f'<ul class="certdesk-errors">{"".join(items)}</ul>'


def read_ledger(home: Path) -> tuple[pd.DataFrame, str]:
    """The ledger, and an HTML warning when it cannot be read (then an empty ledger).

    A panel must open even on a broken ledger, and say why it shows nothing.
    """
    try:
        return load_ledger(home), ""
    except CertdeskError as exc:
        return empty_ledger(), (
            '<div class="certdesk-ledger-error" style="color:#8a1c1c">⚠ Registro non '
            f"leggibile: <code>{esc(exc.code)}</code>: {esc(exc.message)}</div>"
        )


def no_answer_message(name: str, timeout: float) -> str:
    """What a panel says when the daemon did not answer in time (the request stays queued)."""
    return (
        f"Nessuna risposta dal daemon entro {int(timeout)} s. La richiesta "
        f"<code>{html.escape(name)}</code> resta in coda e sarà elaborata quando il "
        "daemon sarà attivo: l'esito comparirà in <i>Stato certificati</i>."
    )
