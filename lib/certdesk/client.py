"""The client side of the drop-folder protocol, shared by the CLI and the notebooks.

A client never touches the state store or the CA key: it writes a request into
``inbox/`` (aside under a dot-name, fsynced, then renamed, so the daemon never sees a
half-written file) and waits for ``outbox/receipts/<name>.json``; through a channel
(``canale``), into that channel's inbox, and its receipt in that channel's outbox
(``channels``: ``inbox/<canale>/``, or the administrators' ``state/admin/inbox/``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .home import Home
from .outbox import Outbox
from .reasons import Motivazione

__all__ = ["drop_file", "file_cancellation", "receipt_path", "unique_name", "wait_for_receipt"]


def unique_name(prefix: str, suffix: str) -> str:
    """A file name no other client will pick: time-ordered, then random."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}-{stamp}-{secrets.token_hex(4)}{suffix}"


def drop_file(home: Path, name: str, data: bytes, *, canale: str = "") -> Path:
    """Write ``data`` into ``home/inbox/name`` (or the inbox of ``canale``) atomically
    (write aside, fsync, rename)."""
    if "/" in name or name.startswith(".") or name in ("", "..") or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    inbox = Home(Path(home)).channel_inbox(canale)
    if not canale:
        inbox.mkdir(parents=True, exist_ok=True)  # a channel's inbox is canale add's
    aside = inbox / f".{name}.{secrets.token_hex(4)}.tmp"
    with open(aside, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    final = inbox / name
    os.rename(aside, final)
    return final


def file_cancellation(
    home: Path,
    *,
    codice_fiscale: str,
    id_operazione: Sequence[str],
    motivazione: Motivazione | str,
    nota: str = "",
    operatore: str = "",
    name: str | None = None,
    canale: str = "",
) -> Path:
    """File an annullamento request into ``inbox/`` (or the inbox of ``canale``) exactly
    as the contract describes it."""
    code = motivazione.value if isinstance(motivazione, Motivazione) else str(motivazione)
    request: dict[str, Any] = {
        "tipo": "annullamento",
        "codice_fiscale": codice_fiscale,
        "id_operazione": list(id_operazione),
        "motivazione": code,
        "nota": nota,
        "operatore": operatore,
    }
    data = json.dumps(request, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    return drop_file(home, name or unique_name("annullamento", ".json"), data, canale=canale)


def receipt_path(home: Path, input_name: str | bytes, *, canale: str = "") -> Path:
    """Where the daemon writes the receipt of ``inbox/input_name`` (or of the inbox of
    ``canale``), for every name: ``str`` as ``os.listdir``/``os.fsdecode`` give it (a byte
    that is not UTF-8 as a lone surrogate), or the raw ``bytes``. See ``certdesk.names``."""
    if not canale:
        return Outbox.of(home).receipt_of(input_name)
    return Outbox(Home(Path(home)).channel_outbox(canale)).receipt_of(input_name)


def wait_for_receipt(
    home: Path, input_name: str | bytes, *, timeout: float = 60.0, interval: float = 0.05,
    canale: str = "",
) -> dict[str, Any] | None:  # fmt: skip
    """The receipt of ``input_name`` once the daemon wrote it, or None after ``timeout``.

    Receipts appear atomically (renamed into place), so a file that exists is complete.
    """
    path = receipt_path(home, input_name, canale=canale)
    deadline = time.monotonic() + timeout
    while True:
        try:
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
        except FileNotFoundError:
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
