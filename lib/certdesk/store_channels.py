"""The store's facts about channels: part of the store (``Store`` has these queries).

The list of channels made by ``certdesk canale`` (``canali``), each channel's own rows,
which its ``outbox/<canale>/ledger.csv`` shows (``outbox_channels``), and the certificate
a signed annullamento names its signer by. The writes are ``Transaction.add_channel`` and
``retire_channel``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from .records import RequestRecord, RequestText
from .store_rows import REQUEST_COLUMNS, REQUEST_TEXT, request_record

__all__ = ["ChannelEntry", "ChannelFacts", "ChannelRows"]


@dataclass(frozen=True)
class ChannelEntry:
    """A channel as ``certdesk canale add`` recorded it."""

    nome: str
    gruppo: str  # the Unix group owning its folders; "" for none
    creato: str
    ritirato: str  # when it was retired; "" while it takes inputs


class ChannelFacts:
    """Mixed into ``Store``: ``_conn`` is its connection."""

    _conn: sqlite3.Connection

    def channels(self) -> list[ChannelEntry]:
        """Every channel made by ``certdesk canale add``, by name (retired ones too)."""
        return [
            ChannelEntry(nome, gruppo, creato, ritirato or "")
            for nome, gruppo, creato, ritirato in self._conn.execute(
                "SELECT nome, gruppo, creato, ritirato FROM canali ORDER BY nome"
            )
        ]

    def channel(self, nome: str) -> ChannelEntry | None:
        return next((c for c in self.channels() if c.nome == nome), None)

    def channels_with_requests(self) -> list[str]:
        """The named channels that have at least one request (the partial index's keys)."""
        return [row[0] for row in self._conn.execute(
            "SELECT DISTINCT canale FROM requests INDEXED BY requests_canale"
            " WHERE canale != '' ORDER BY 1"
        )]  # fmt: skip

    def iter_channel_texts(self, canale: str, after: str = "") -> Iterator[list[RequestText]]:
        """``Store.iter_request_texts`` for one channel's requests, through its index."""
        cursor = self._conn.execute(
            f"{REQUEST_TEXT} INDEXED BY requests_canale WHERE canale = ? AND canale != ''"
            " AND id_operazione > ? ORDER BY id_operazione",
            (canale, after),
        )
        while rows := cursor.fetchmany(10_000):
            yield rows

    def channel_of(self, id_operazioni: list[str]) -> dict[str, str]:
        """The channel of each of these requests."""
        found: dict[str, str] = {}
        for start in range(0, len(id_operazioni), 500):
            part = id_operazioni[start : start + 500]
            found.update(self._conn.execute(
                "SELECT id_operazione, canale FROM requests WHERE id_operazione IN"
                f" ({', '.join('?' * len(part))})", part,
            ).fetchall())  # fmt: skip
        return found

    def retired_channels(self) -> dict[str, str]:
        """The retired channels and when each was retired."""
        return dict(self._conn.execute(
            "SELECT nome, ritirato FROM canali WHERE ritirato IS NOT NULL"
        ).fetchall())  # fmt: skip

    def certificate_with_serial(self, seriale: str) -> bytes | None:
        """The certificate of this serial (lower-case hex), if this CA issued one."""
        row = self._conn.execute(
            "SELECT cert_der FROM requests WHERE seriale = ? AND cert_der IS NOT NULL",
            (seriale,),
        ).fetchone()
        return bytes(row[0]) if row else None

    def get_in_channel(self, id_op: str, canale: str) -> RequestRecord | None:
        row = self._conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id_operazione = ? AND canale = ?",
            (id_op, canale),
        ).fetchone()
        return request_record(row) if row else None

    def request_text_in_channel(self, id_op: str, canale: str) -> RequestText | None:
        row: RequestText | None = self._conn.execute(
            f"{REQUEST_TEXT} WHERE id_operazione = ? AND canale = ?", (id_op, canale)
        ).fetchone()
        return row


class ChannelRows:
    """One named channel's rows, with the three queries ``outbox_ledger.LedgerFile`` asks
    of the store: the same file code keeps ``outbox/ledger.csv`` and each channel's."""

    def __init__(self, facts: ChannelFacts, canale: str) -> None:
        self._facts = facts
        self.canale = canale

    def iter_request_texts(self, after: str = "") -> Iterator[list[RequestText]]:
        return self._facts.iter_channel_texts(self.canale, after)

    def request_text(self, id_op: str) -> RequestText | None:
        return self._facts.request_text_in_channel(id_op, self.canale)

    def get(self, id_op: str) -> RequestRecord | None:
        return self._facts.get_in_channel(id_op, self.canale)
