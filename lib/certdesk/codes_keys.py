"""The error codes of the CA's keys in a token (PKCS#11) and of the offline ceremony.

Part of docs/contract.md section 9's command-line codes, kept apart from ``codes_cli`` so
that each module stays one screenful. ``PIN_ERRATO`` and ``TOKEN_NON_DISPONIBILE`` are
also the codes of a daemon's pause (``faults.TokenFault``) when the token refuses or
disappears while it runs: then ``outbox/daemon.json`` shows them under ``pausa``.
"""

from __future__ import annotations

from .codes_entry import ErrorCode
from .errors import CaError

__all__ = ["TOKEN_CODES"]

TOKEN_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(
        "PIN_MANCANTE", CaError, "cli",
        "Manca il PIN del token PKCS#11: imposta {variabile} oppure scrivi in [keys] "
        "pin_file il percorso di un file con il PIN (permessi 0600).",
        {
            "illeggibile": "Impossibile leggere il file del PIN {file}: {errore}.",
            "vuoto": "Il file del PIN {file} è vuoto.",
        },
    ),
    ErrorCode(
        "PIN_ERRATO", CaError, "cli",
        "Il token {token} ha rifiutato il PIN ({motivo}). certdesk non lo riprova, per non "
        "bloccare il token: correggi {fonte} e avvia di nuovo.",
        {
            "gia_rifiutato": "Il PIN di {fonte} è già stato rifiutato dal token {token}: "
            "certdesk non lo prova una seconda volta, per non bloccare il token. Correggi il "
            "PIN e avvia di nuovo.",
        },
    ),
    ErrorCode(
        "TOKEN_NON_DISPONIBILE", CaError, "cli",
        "Il token PKCS#11 {token} non risponde ({errore}): controlla che sia collegato e "
        "acceso; certdesk riprende da solo quando torna.",
        {
            "modulo": "Impossibile caricare la libreria PKCS#11 {modulo} ({errore}): "
            "controlla keys.module in certdesk.toml.",
            "assente": "Nessun token con etichetta {token} nella libreria {modulo}: "
            "controlla che sia collegato e keys.token_label in certdesk.toml.",
            "chiave": "Il token {token} non ha una chiave privata con etichetta {etichetta}: "
            "controlla keys.{impostazione} in certdesk.toml.",
            "chiave_pubblica": "Il token {token} non ha la chiave pubblica della chiave "
            "{etichetta} (stessa etichetta o stesso CKA_ID): certdesk ne ha bisogno per i "
            "certificati.",
            "chiave_esistente": "Il token {token} ha già una chiave con etichetta "
            "{etichetta}: certdesk non la sovrascrive. Usa --use-existing-keys per adottarla, "
            "o un'altra etichetta in certdesk.toml.",
            "estraibile": "La chiave {etichetta} del token {token} si può estrarre "
            "(CKA_EXTRACTABLE, o non CKA_SENSITIVE): la chiave di una CA non deve poter "
            "uscire dal token. Generala di nuovo non estraibile.",
            "tipo": "La chiave {etichetta} del token {token} è di un tipo che certdesk non "
            "usa ({tipo}): servono RSA o EC P-256/P-384.",
        },
    ),
    ErrorCode(
        "CERIMONIA_NON_VALIDA", CaError, "cli",
        "Il file {file} non va bene per la cerimonia della radice: {motivo}.",
        {
            "csr": "{file} non è una richiesta PKCS#10 (CSR) valida della CA emittente: "
            "{motivo}.",
            "certificato": "{file} non contiene il certificato della CA emittente seguito da "
            "quello della radice (PEM), come lo scrive 'certdesk sign-issuing': {motivo}.",
            "non_corrisponde": "Il certificato in {file} non è per la chiave di questa CA "
            "emittente: è stato firmato per un'altra richiesta.",
            "nessuna_attesa": "{cartella} non aspetta un certificato: prima 'certdesk init "
            "--issuing-only' crea la chiave e la richiesta da portare alla radice.",
            "non_radice": "{cartella} non ha la chiave della radice: 'certdesk sign-issuing' "
            "va eseguito nella home della radice.",
        },
    ),
)  # fmt: skip
