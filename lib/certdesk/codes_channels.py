"""The error codes of integrator channels and signed annullamenti (docs/contract.md
section 9): the receipts' (``table``) and ``certdesk canale``'s (``cli``).

``certdesk.codes`` registers them beside ``codes_inputs``' and ``codes_cli``'s.
"""

from __future__ import annotations

from .codes_entry import ErrorCode
from .errors import CancellationRejected, ConfigurationError, InputRejected

__all__ = ["CHANNEL_CODES"]

_P7M_HOW = (
    " Firma il file JSON dell'annullamento con la chiave del certificato da annullare: "
    "openssl cms -sign -nodetach -binary -outform DER -signer cert.pem -inkey key.pem "
    "-in NOME.json -out NOME.json.p7m (poi deposita NOME.json.p7m)."
)

CHANNEL_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(
        "CANALE_RITIRATO", InputRejected, "table",
        "Il canale {canale} è stato ritirato il {ritirato}: non accetta più richieste né "
        "annullamenti. Chiedi all'amministratore di certdesk quale canale usare.",
    ),
    ErrorCode(
        "P7M_NON_VALIDO", CancellationRejected, "table",
        "Il file non è un annullamento firmato (.p7m) leggibile: {motivo}." + _P7M_HOW,
        {
            "non_der": "Il file non è un annullamento firmato (.p7m) leggibile: non è una "
            "struttura CMS, né in binario (DER) né in testo base64 o PEM (è troncato, "
            "danneggiato o di un altro formato)." + _P7M_HOW,
            "non_firmato": "Il file .p7m non contiene una firma (CMS SignedData): forse è "
            "solo un elenco di certificati." + _P7M_HOW,
            "staccato": "Il file .p7m contiene la firma ma non il documento firmato (firma "
            "staccata): serve la firma con il documento incluso (-nodetach)." + _P7M_HOW,
            "firmatari": "Il file .p7m ha {numero} firme: ne serve esattamente una, quella "
            "del titolare del certificato da annullare.",
            "contenuto": "Il file .p7m non firma un documento di dati (il tipo di contenuto "
            "è {tipo}).",
            "algoritmo": "Il file .p7m usa l'algoritmo {algoritmo}, che certdesk non accetta "
            "(impronte SHA-256, SHA-384 o SHA-512; firme RSA, RSA-PSS o ECDSA).",
            "id_operazione": "Un annullamento firmato (.p7m) annulla un solo certificato: "
            "indica in id_operazione l'IdOperazione del certificato con cui lo firmi "
            "(ne indica {numero}).",
        },
    ),
    ErrorCode(
        "FIRMA_NON_VALIDA", CancellationRejected, "table",
        "La firma del file .p7m non è valida per il certificato {id_operazione}: il file è "
        "stato alterato dopo la firma, oppure non è stato firmato con la chiave di quel "
        "certificato.",
        {
            "impronta": "Il documento nel file .p7m non è quello firmato (la sua impronta "
            "non corrisponde): il file è stato alterato dopo la firma. Firmalo di nuovo.",
        },
    ),
    ErrorCode(
        "FIRMATARIO_DIVERSO", CancellationRejected, "table",
        "Il file .p7m è firmato con un altro certificato di questa CA, non con quello "
        "dell'IdOperazione {id_operazione}: un annullamento firmato annulla solo il "
        "certificato con cui è firmato.",
    ),
    ErrorCode(
        "FIRMATARIO_NON_TITOLARE", CancellationRejected, "table",
        "Il file .p7m è firmato con un certificato che questa CA non ha emesso: solo il "
        "titolare del certificato {id_operazione}, firmando con la sua chiave, può "
        "annullarlo da qualunque canale.",
    ),
    ErrorCode(
        "CANALE_NON_VALIDO", ConfigurationError, "cli",
        "{nome!a} non è un nome di canale valido: usa da 1 a 32 lettere minuscole, cifre "
        "o trattini (non all'inizio né alla fine), e non uno dei nomi riservati ({riservati}).",
    ),
    ErrorCode(
        "CANALE_ESISTENTE", ConfigurationError, "cli",
        "Il canale {nome} esiste già, oppure {cartella} c'è già: scegli un altro nome.",
    ),
    ErrorCode(
        "CANALE_SCONOSCIUTO", ConfigurationError, "cli",
        "Il canale {nome} non esiste in questa home: 'certdesk canale list' mostra quelli "
        "che ci sono.",
    ),
    ErrorCode(
        "GRUPPO_SCONOSCIUTO", ConfigurationError, "cli",
        "Il gruppo Unix {gruppo!a} non esiste su questa macchina: crealo (groupadd "
        "{gruppo}), aggiungi gli utenti dell'integratore e il daemon, poi riprova.",
    ),
)  # fmt: skip
