"""Integrator channels: whose folder an input came through, and what it may cancel.

A channel is an integrator's own pair of folders, ``inbox/<canale>/`` and
``outbox/<canale>/`` (``certdesk canale add``). Two more are always there:

- the **default channel** (``""``): the top-level ``inbox/`` and ``outbox/``, so a home with
  one integrator works as it did before channels;
- the **administrators' channel** (``@admin``): ``state/admin/inbox/``, where the
  Annullamento panel files. Only the daemon's own user can write under ``state/`` (0700),
  which is what makes its authority over every certificate safe to grant.

Every request records the channel it came through (the ledger's ``Canale``). A
cancellation may cancel only what its channel may (:class:`Authority`): a channel its own
requests, the administrators every request. Certificates outside the sender's authority
are neither cancelled nor disclosed: to the rules they do not exist.

The channel travels with the claim: ``intake.claim`` names the claim folder
``<time>-<random>.<canale>`` (nothing for the default channel), so an input left in
``state/work/`` by a crash is finished through the channel it came in by, before the
store knew anything of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .records import RequestRecord

__all__ = [
    "ADMIN_CHANNEL",
    "DEFAULT_CHANNEL",
    "RESERVED_NAMES",
    "Authority",
    "channel_of_claim",
    "claim_suffix",
    "is_channel_name",
    "shown_channel",
]

DEFAULT_CHANNEL = ""
ADMIN_CHANNEL = "@admin"
# A channel's name is a folder in inbox/ and outbox/, a claim's suffix, a ledger value and
# a Unix group's likely name: lower-case ASCII letters, digits and inner hyphens, no dot
# (the claim's separator), at most 32 characters.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
# Names that outbox/ already uses for the default channel's and the CA's own folders.
RESERVED_NAMES = frozenset({"ca", "certs", "ocsp", "receipts", "admin"})


def is_channel_name(name: str) -> bool:
    """A name ``certdesk canale add`` accepts (the default and admin channels are not)."""
    return bool(_NAME.fullmatch(name)) and name not in RESERVED_NAMES


def claim_suffix(canale: str) -> str:
    """What a claim's id ends with for an input of ``canale``."""
    return f".{canale}" if canale else ""


def channel_of_claim(claim: str) -> str:
    """The channel an input was claimed from, read back from its claim's id."""
    _, dot, canale = claim.partition(".")
    return canale if dot else DEFAULT_CHANNEL


def shown_channel(canale: str) -> str:
    """How a person reads a channel's name (panels, messages)."""
    if canale == DEFAULT_CHANNEL:
        return "predefinito (inbox/)"
    if canale == ADMIN_CHANNEL:
        return "amministratori"
    return canale


@dataclass(frozen=True)
class Authority:
    """What a cancellation may cancel: the requests of one channel, or every request.

    A signed cancellation (a ``.p7m``) proves possession of one certificate's key: its
    authority is that certificate alone, whatever channel it came through."""

    canale: str
    everything: bool = False
    only: str = ""  # an IdOperazione: a proof of possession covers that one alone

    @classmethod
    def of_channel(cls, canale: str) -> Authority:
        return cls(canale, everything=canale == ADMIN_CHANNEL)

    @classmethod
    def of_holder(cls, canale: str, id_operazione: str) -> Authority:
        return cls(canale, only=id_operazione)

    def may_cancel(self, record: RequestRecord) -> bool:
        if self.only:
            return record.id_operazione == self.only
        return self.everything or record.canale == self.canale

    def visible(self, records: Iterable[RequestRecord]) -> list[RequestRecord]:
        """The records this authority covers; the rest stay unknown to the decision."""
        return [r for r in records if self.may_cancel(r)]
