"""What the three panels share: the home, HTML bits, a waiter (the daemon's health: _health).

Nothing here signs or changes state: the panels read ``outbox/`` and write requests into
an inbox (a channel's: ``channels``) through :mod:`certdesk.client`, exactly as any other
client does.
"""

from __future__ import annotations

import base64
import html
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ._health import DaemonHealth, DaemonPause, daemon_health, health_banner
from ._threads import start_thread

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
            self._thread = start_thread(run, self._name)
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


def no_answer_message(name: str, timeout: float) -> str:
    """What a panel says when the daemon did not answer in time (the request stays queued)."""
    return (
        f"Nessuna risposta dal daemon entro {int(timeout)} s. La richiesta "
        f"<code>{html.escape(name)}</code> resta in coda e sarà elaborata quando il "
        "daemon sarà attivo: l'esito comparirà in <i>Stato certificati</i>."
    )
