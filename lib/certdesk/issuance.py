"""Deciding a checked request: issue it, answer it as a repeat, or refuse it for its key.

The CSR's own checks are ``policy.inspect_request``; the rules here need facts about
other requests, which the store reports (``KeyFacts``) and the caller passes in:

- a byte-identical request dropped again while the first is being issued or valid is an
  idempotent retry: the same answer, no second certificate;
- a key whose certificate was cancelled as lost or stolen is refused for ever
  (``Motivazione.blocks_key``);
- a key certified (or being certified) for another codice fiscale is refused: every
  person or company needs its own key pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .codes import refusal_as
from .errors import RequestRejected
from .reasons import Motivazione
from .records import RequestRecord
from .states import Stato

__all__ = ["Accept", "Decision", "KeyFacts", "Refuse", "Repeat", "decide_request"]


@dataclass(frozen=True)
class KeyFacts:
    """What is known of a public key: the store's accepted requests for it, and the
    codice fiscale that asked for it earlier in the same chunk (not committed yet)."""

    uses: Sequence[RequestRecord]
    asked_in_chunk_by: str | None = None


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Repeat:
    of: RequestRecord


@dataclass(frozen=True)
class Refuse:
    error: RequestRejected


Decision = Accept | Repeat | Refuse


def decide_request(
    codice_fiscale: str, *, same_input: RequestRecord | None, key: KeyFacts, canale: str = ""
) -> Decision:
    """The decision for a request that passed its own checks. ``same_input``: an earlier
    request of the same bytes that is being issued or is valid, if any. ``canale``: the
    channel it came through; a blocked key's certificate is named only to its own."""
    if same_input is not None:
        return Repeat(same_input)
    for use in key.uses:
        if use.stato is Stato.ANNULLATO and Motivazione(use.motivazione).blocks_key:
            label = Motivazione(use.motivazione).label
            if use.canale != canale:
                return Refuse(refusal_as(RequestRejected, "CHIAVE_BLOCCATA", "altro_canale",
                                         motivo=label))  # fmt: skip
            return Refuse(
                refusal_as(
                    RequestRejected, "CHIAVE_BLOCCATA", id_operazione=use.id_operazione,
                    motivo=label,
                )
            )  # fmt: skip
    owners = {use.codice_fiscale for use in key.uses}
    if key.asked_in_chunk_by is not None:
        owners.add(key.asked_in_chunk_by)
    if owners - {codice_fiscale}:
        return Refuse(refusal_as(RequestRejected, "CHIAVE_GIA_CERTIFICATA"))
    return Accept()
