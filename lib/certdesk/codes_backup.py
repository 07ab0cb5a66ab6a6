"""The error codes of backup and restore (docs/contract.md section 9's command-line codes).

``certdesk backup``, ``backup --verify``, ``restore`` and ``verify-ledger --witness``
refuse with these; ``certdesk.codes`` registers them beside ``codes_cli``'s.
"""

from __future__ import annotations

from .codes_entry import ErrorCode
from .errors import BackupError

__all__ = ["BACKUP_CODES"]

BACKUP_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(
        "BACKUP_NON_VALIDO", BackupError, "cli",
        "Il backup {cartella} è danneggiato o incompleto: {errore}. Non usarlo: prendi "
        "un altro backup.",
        {
            "manifesto": "Il backup {cartella} non ha un manifest.json leggibile ({errore}): "
            "non è un backup di certdesk, oppure è stato interrotto o danneggiato.",
            "versione": "Il backup {cartella} ha il formato {versione}, che questo certdesk "
            "non conosce (conosce il {attesa}): usa il certdesk che lo ha scritto.",
            "file": "Il backup {cartella} è danneggiato: {file} {errore}. Non usarlo: "
            "prendi un altro backup.",
            "archivio": "Il backup {cartella} contiene un archivio degli stati danneggiato "
            "({errore}). Non usarlo: prendi un altro backup.",
        },
    ),
    ErrorCode(
        "DESTINAZIONE_NON_VALIDA", BackupError, "cli",
        "{cartella} non può ricevere il backup: {motivo}.",
        {
            "esiste": "{cartella} esiste già: certdesk non sovrascrive mai un backup. Scegli "
            "un nome nuovo (per esempio con la data).",
            "dentro_home": "{cartella} è dentro {dentro} della home: un backup va fuori da "
            "inbox/, outbox/ e state/ (meglio su un altro disco).",
        },
    ),
    ErrorCode(
        "HOME_NON_VUOTA", BackupError, "cli",
        "{cartella} non è vuota: il ripristino scrive solo in una home nuova o vuota, "
        "mai sopra una CA esistente. Indica con --home una cartella nuova.",
    ),
    ErrorCode(
        "TESTIMONE_NON_VALIDO", BackupError, "cli",
        "{file} non è un journal.csv di questa CA: {errore}.",
    ),
    ErrorCode(
        "RICHIESTE_PERSE", BackupError, "cli",
        "{file} mostra {numero} richieste che l'archivio degli stati non conosce più "
        "(perse con il disco dopo il backup): {elenco}. I loro certificati possono "
        "esistere: avvisa i titolari e chiedi loro una nuova richiesta.",
    ),
)  # fmt: skip
