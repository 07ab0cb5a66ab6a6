"""Every error code a person can meet, with its message in Italian: one registry.

A receipt's ``messaggio``, the command line's ``certdesk: CODE: sentence`` and the panels
take their sentence from here, so the esercente reads one voice whichever module refused.
The entries are ``ErrorCode`` values (``codes_entry`` says what each holds), written in
modules by docs/contract.md section 9: ``codes_inputs`` (the table: the refusals a receipt
can carry), ``codes_cli`` (the command line's codes), ``codes_backup`` (backup and
restore's) and ``codes_channels`` (channels and signed annullamenti).

A site raises ``refusal(code, [case,] **facts)``; a module whose contract is a narrower
class (``policy`` raises ``RequestRejected`` only) uses ``refusal_as``::

    raise refusal("CHIAVE_BLOCCATA", id_operazione=use.id_operazione, motivo=label)
    raise refusal("JSON_NON_VALIDO", "bom")
    raise refusal_as(RequestRejected, "FILE_TROPPO_GRANDE", "csr", limite_kib=64)

An unknown code or case is a ``KeyError``, a missing or an extra fact a ``ValueError``:
programming mistakes, which the tests meet, never a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from .codes_backup import BACKUP_CODES
from .codes_channels import CHANNEL_CODES
from .codes_cli import CLI_CODES
from .codes_entry import ErrorCode
from .codes_inputs import INPUT_CODES
from .errors import CertdeskError

__all__ = ["REGISTRY", "ErrorCode", "message", "refusal", "refusal_as"]

E = TypeVar("E", bound=CertdeskError)


def message(code: str, case: str = "", /, **facts: object) -> str:
    """The Italian sentence of ``code`` (and ``case``) with ``facts``, e.g. for a panel."""
    return _entry(code).format(case, **facts)


def refusal(code: str, case: str = "", /, **facts: object) -> CertdeskError:
    """The exception to raise for ``code``: its registered class, code and sentence."""
    entry = _entry(code)
    return entry.raised_as(entry.format(case, **facts), code=code)


def refusal_as(cls: type[E], code: str, case: str = "", /, **facts: object) -> E:
    """``refusal`` as ``cls``, a subclass of the registered class (or that class): for a
    module whose callers catch a narrower class, e.g. ``policy``'s ``RequestRejected``."""
    entry = _entry(code)
    if not issubclass(cls, entry.raised_as):
        raise ValueError(f"{code} is raised as {entry.raised_as.__name__}, not {cls.__name__}")
    return cls(entry.format(case, **facts), code=code)


def _entry(code: str) -> ErrorCode:
    try:
        return REGISTRY[code]
    except KeyError:
        where = "certdesk.codes_inputs, codes_cli, codes_backup or codes_channels"
        raise KeyError(f"unregistered error code {code!r}: add it to {where}") from None


def _registry(entries: tuple[ErrorCode, ...]) -> Mapping[str, ErrorCode]:
    table: dict[str, ErrorCode] = {}
    for entry in entries:
        if entry.code in table:
            raise ValueError(f"{entry.code} is registered twice")
        table[entry.code] = entry
    return MappingProxyType(table)


REGISTRY: Mapping[str, ErrorCode] = _registry(
    (*INPUT_CODES, *CLI_CODES, *BACKUP_CODES, *CHANNEL_CODES)
)
