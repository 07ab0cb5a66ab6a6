"""The channels the panels offer (issue 18): where each panel learns them, how each reads.

Two sources, each for what it alone knows:

- the **ledger** (``outbox/``, through the query engine): every channel a request came
  through, the distinct values of ``Canale``; one aggregate over one column, which anyone
  who may read the ledger can ask (the administrators' group, an analyst);
- the **store** (``Store.channels``): the channels ``certdesk canale add`` made, used or
  not yet, and which of them are retired. ``state/`` is the daemon's user's alone (0700),
  and that is the user the admin web app runs as, since the Annullamento panel files into
  ``state/admin/inbox/``. The store is opened only where it exists, never made, and only
  read (:func:`recorded_channels`): a panel run by another user, or on a home whose daemon
  never started, finds no store and offers what the ledger shows.

The Stato panel filters the ledger, so it offers both: the channels with requests, and
those made but not used yet (so its list is ``certdesk canale list``'s), a retired one
marked so. The Richiesta panel files a request, so it offers the default channel and the
channels that take inputs, which only the store knows: to the daemon's own user a retired
channel's inbox is a folder like any other (retiring takes the group's write permission,
not the owner's). A folder in ``inbox/`` is never guessed to be a channel: one that is
not (an input the daemon has yet to refuse) would take the request with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ..channels import ADMIN_CHANNEL, DEFAULT_CHANNEL, shown_channel
from ..errors import CertdeskError
from ..home import Home
from ..store import ChannelEntry, Store

__all__ = ["ALL", "cell_label", "recorded_channels", "request_options", "status_options"]

#: The Stato filter's "every channel" (no channel's name: they are lower-case letters,
#: digits and hyphens).
ALL = "*"


def recorded_channels(home: Path) -> list[ChannelEntry]:
    """The channels made by ``certdesk canale add``, retired ones too; none when this
    process cannot read the store, or there is none yet (it is never created here)."""
    database = Home(Path(home)).database
    try:
        if not database.is_file():
            return []
        # only read: a newer certdesk's panel never upgrades the store of a daemon of the
        # version before, still running
        store = Store(database, read_only=True)
    except (OSError, CertdeskError):  # another user's state/, an older or newer store
        return []
    try:
        return store.channels()
    except sqlite3.Error:
        return []
    finally:
        store.close()


def status_options(ledger: Iterable[str], recorded: Iterable[ChannelEntry]
                   ) -> list[tuple[str, str]]:
    """The Stato filter's choices, ``(label, value)``: every channel, the default one, the
    administrators', then each named channel by name: those with requests in the ledger
    and those recorded in the store, a retired one marked so."""
    retired = {c.nome for c in recorded if c.ritirato}
    named = sorted({c.nome for c in recorded} | (set(ledger) - {DEFAULT_CHANNEL, ADMIN_CHANNEL}))
    return [
        ("Tutti", ALL),
        (shown_channel(DEFAULT_CHANNEL), DEFAULT_CHANNEL),
        (shown_channel(ADMIN_CHANNEL), ADMIN_CHANNEL),
        *[(f"{nome} (ritirato)" if nome in retired else nome, nome) for nome in named],
    ]


def request_options(recorded: Iterable[ChannelEntry]) -> list[tuple[str, str]]:
    """The Richiesta panel's choices: the default channel first, then each channel that
    takes inputs (recorded and not retired), by name."""
    open_ = sorted(c.nome for c in recorded if not c.ritirato)
    return [(shown_channel(DEFAULT_CHANNEL), DEFAULT_CHANNEL), *[(n, n) for n in open_]]


def cell_label(value: object) -> str:
    """A ledger's ``Canale`` as a table shows it (an empty cell is the default channel)."""
    return shown_channel("" if value is None or str(value) in ("<NA>", "nan") else str(value))
