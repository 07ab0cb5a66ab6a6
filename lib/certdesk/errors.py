"""One error root for certdesk, with a stable code on every refusal a user can meet.

    CertdeskError                      code, message; anything certdesk refuses
    ├── InputRejected                  an input file is refused (its receipt is KO)
    │   ├── RequestRejected            a CSR breaks a rule (codes CSR_*, CHIAVE_*, ...)
    │   └── CancellationRejected       an annullamento breaks a rule (ANNULLAMENTO_*, ...)
    ├── ConfigurationError             certdesk.toml or the environment is wrong
    ├── CaError                        the CA is missing, exists already, or is unsafe
    ├── StoreError                     the state store refuses an operation
    │   └── InvalidTransition          a state change outside the contract's diagram
    ├── LedgerTampered                 verify-ledger found a bad journal or ledger row
    ├── LedgerUnreadable               ledger.csv is not the contract's ledger (analysts)
    ├── BackupError                    a backup, a restore or a surviving journal is refused
    └── FolderReplaced                 inbox/, outbox/ or state/ moved under the daemon

Every code, its Italian sentence and its class are registered in ``certdesk.codes``:
raise ``refusal(code, ...)`` from there rather than building these by hand. A refusal
built without a code is a bug of certdesk, so the generic classes default to
``ERRORE_INTERNO``. ``TypeError``/``ValueError`` stay for programming mistakes, never for
bad input files.
"""

from __future__ import annotations

__all__ = [
    "BackupError",
    "CaError",
    "CancellationRejected",
    "CertdeskError",
    "ConfigurationError",
    "FolderReplaced",
    "InputRejected",
    "InvalidTransition",
    "LedgerTampered",
    "LedgerUnreadable",
    "RequestRejected",
    "StoreError",
]


class CertdeskError(Exception):
    """Base of every error certdesk reports to a person: a stable code and a sentence."""

    default_code = "ERRORE_INTERNO"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InputRejected(CertdeskError):
    """An input file is refused; the receipt carries ``code`` and ``message``."""


class RequestRejected(InputRejected):
    """A certificate request breaks a rule."""


class CancellationRejected(InputRejected):
    """An annullamento breaks a rule."""


class ConfigurationError(CertdeskError):
    default_code = "CONFIGURAZIONE_NON_VALIDA"


class CaError(CertdeskError):
    default_code = "CA_NON_DISPONIBILE"


class StoreError(CertdeskError):
    default_code = "ARCHIVIO_NON_DISPONIBILE"


class InvalidTransition(StoreError):
    default_code = "TRANSIZIONE_NON_VALIDA"


class LedgerTampered(CertdeskError):
    default_code = "REGISTRO_ALTERATO"

    def __init__(self, message: str, *, code: str | None = None, row: int | None = None) -> None:
        super().__init__(message, code=code)
        self.row = row


class LedgerUnreadable(CertdeskError):
    """``ledger.csv`` exists but is not the contract's ledger (wrong columns, bad dates)."""

    default_code = "REGISTRO_NON_LEGGIBILE"


class BackupError(CertdeskError):
    """``certdesk backup``/``restore`` refuse a destination, a backup or a home, or
    ``verify-ledger --witness`` finds requests the store lost."""

    default_code = "BACKUP_NON_VALIDO"


class FolderReplaced(CertdeskError):
    """A folder of the home is no longer the one the daemon started on: it stops."""

    default_code = "CARTELLA_SOSTITUITA"
