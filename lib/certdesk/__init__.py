"""certdesk: a small, self-hosted certificate authority for the "certificato utente"
of Italian Gestori ed Esercenti.

The public API is short; everything else is a private module:

- ``Motivazione``: the six cancellation reasons, with labels and CRL reason codes;
- ``Stato``: the states of a request;
- ``file_cancellation`` / ``drop_file`` / ``wait_for_receipt``: the drop-folder client;
- ``load_ledger``: the ledger as a typed pandas DataFrame, for analysts' notebooks;
- ``CertdeskError``: the root of every error, with a stable ``code``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import drop_file, file_cancellation, wait_for_receipt
from .errors import CertdeskError
from .reasons import Motivazione
from .states import Stato

__version__ = "0.1.0"

__all__ = [
    "CertdeskError",
    "Motivazione",
    "Stato",
    "__version__",
    "drop_file",
    "file_cancellation",
    "load_ledger",
    "wait_for_receipt",
]

if TYPE_CHECKING:
    from .frame import load_ledger


def __getattr__(name: str) -> Any:
    # pandas is imported only by those who ask for the DataFrame, not by the daemon.
    if name == "load_ledger":
        from .frame import load_ledger

        return load_ledger
    raise AttributeError(name)
