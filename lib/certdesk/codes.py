"""Every error code a person can meet, with its message in Italian: one registry.

A receipt's ``messaggio``, the command line's ``certdesk: CODE: sentence`` and the panels
take their sentence from here, so the esercente reads one voice whichever module refused.
Each ``ErrorCode`` holds:

- ``code``: the stable UPPER_SNAKE_CASE code;
- ``raised_as``: the exception class every refusal with this code is an instance of;
- ``contract``: where docs/contract.md (section 9) documents it: a row of the table
  (``"table"``) or the sentence listing the command line's codes (``"cli"``);
  tests/test_codes.py holds the registry and the contract to each other;
- ``template`` and ``cases``: the sentence, and the code's other sentences by name, as
  ``str.format`` templates whose named placeholders are the facts a site adds (the field,
  the limit, the IdOperazione...). A value written by the sender is shown with ``!a``.

A site raises ``refusal(code, [case,] **facts)``; a module whose contract is a narrower
class (``policy`` raises ``RequestRejected`` only) uses ``refusal_as``::

    raise refusal("CHIAVE_BLOCCATA", id_operazione=use.id_operazione, motivo=label)
    raise refusal("JSON_NON_VALIDO", "bom")
    raise refusal_as(RequestRejected, "FILE_TROPPO_GRANDE", "csr", limite_kib=64)

An unknown code or case is a ``KeyError``, a missing or an extra fact a ``ValueError``:
programming mistakes, which the tests meet, never a file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar

from .errors import (
    CaError,
    CancellationRejected,
    CertdeskError,
    ConfigurationError,
    FolderReplaced,
    InputRejected,
    InvalidTransition,
    LedgerTampered,
    LedgerUnreadable,
    RequestRejected,
    StoreError,
)

__all__ = ["REGISTRY", "ErrorCode", "message", "refusal", "refusal_as"]

E = TypeVar("E", bound=CertdeskError)

_CODE_SHAPE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_FORMATTER = string.Formatter()


def _placeholders(template: str) -> frozenset[str]:
    """The named fields of ``template``; anything but ``{name}``, ``{name!a}`` or
    ``{name:spec}`` (a positional ``{}``, ``{a.b}``, ``{a[0]}``) is refused."""
    names: set[str] = set()
    for _text, name, spec, _conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not name.isidentifier() or "{" in (spec or ""):
            raise ValueError(f"not a named placeholder: {{{name}}} in {template!r}")
        names.add(name)
    return frozenset(names)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    raised_as: type[CertdeskError]
    contract: Literal["table", "cli"]
    template: str
    cases: Mapping[str, str] = field(default_factory=dict)
    _fields: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _CODE_SHAPE.fullmatch(self.code):
            raise ValueError(f"not an UPPER_SNAKE_CASE code: {self.code!r}")
        if "" in self.cases:
            raise ValueError(f"{self.code}: the sentence without a case is ``template``")
        templates = {"": self.template, **self.cases}
        object.__setattr__(self, "cases", MappingProxyType(dict(self.cases)))
        object.__setattr__(
            self,
            "_fields",
            MappingProxyType({case: _placeholders(text) for case, text in templates.items()}),
        )

    def placeholders(self, case: str = "") -> frozenset[str]:
        """The facts the sentence of ``case`` ("" for ``template``) needs."""
        try:
            return self._fields[case]
        except KeyError:
            known = ", ".join(sorted(self.cases)) or "none"
            raise KeyError(f"{self.code} has no case {case!r} (its cases: {known})") from None

    def format(self, case: str = "", /, **facts: object) -> str:
        """The sentence of ``case`` with ``facts``: exactly the placeholders it names."""
        needed = self.placeholders(case)
        missing, extra = needed - facts.keys(), facts.keys() - needed
        if missing or extra:
            raise ValueError(
                f"{self.code}{'/' + case if case else ''}: missing facts {sorted(missing)}, "
                f"unexpected facts {sorted(extra)}"
            )
        text = (self.cases[case] if case else self.template).format(**facts)
        # Receipts and the store hold UTF-8: a lone surrogate in a fact (a JSON "\ud800"
        # escape echoed back) would fail the refusal itself, and the run with it.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
        raise KeyError(f"unregistered error code {code!r}: add it to certdesk.codes") from None


def _text_field(name: str) -> tuple[str, dict[str, str]]:
    """The sentences of an optional text field of an annullamento ('nota', 'operatore')."""
    where = f"Il campo '{name}'"
    return (
        f"{where}, se presente, deve essere un testo (una stringa JSON).",
        {
            "tipo": f"{where} deve essere un testo (una stringa JSON), non {{tipo}}.",
            "lunghezza": f"{where} può avere al massimo {{limite}} caratteri (ne ha "
            "{lunghezza}): accorcialo.",
            "surrogato": f"{where} contiene un surrogato isolato (un escape come \\ud800), "
            "che non è testo: correggilo.",
        },
    )


_NOTA, _NOTA_CASES = _text_field("nota")
_OPERATORE, _OPERATORE_CASES = _text_field("operatore")
_NOT_A_CF = "{campo} contiene {valore!a}, che non è un codice fiscale valido"
_RSA_2048 = "genera una chiave RSA da 2048 bit."
_AGAIN = "correggilo e invialo di nuovo."

_ENTRIES = (
    # -- docs/contract.md section 9, the table: refusals of an input file (receipts) --------
    ErrorCode(
        "FILE_VUOTO", RequestRejected, "table",
        "Il file è vuoto: invia la richiesta di certificato (CSR PKCS#10, in formato PEM o "
        "DER).",
    ),
    ErrorCode(
        "FILE_TROPPO_GRANDE", InputRejected, "table",
        "Il file supera il limite di {limite_kib} KiB: una richiesta di certificato o di "
        "annullamento pesa pochi KiB. Controlla di aver inviato il file giusto.",
        {
            "dimensione": "Il file pesa {byte} byte e supera il limite di {limite_kib} KiB: "
            "una richiesta di certificato o di annullamento pesa pochi KiB. Controlla di "
            "aver inviato il file giusto.",
            "csr": "Il file supera il limite di {limite_kib} KiB: una richiesta di "
            "certificato (CSR) pesa pochi KiB. Controlla di aver inviato il file giusto.",
            "annullamento": "Il file supera il limite di {limite_kib} KiB: una richiesta di "
            "annullamento è di poche righe. Controlla di aver inviato il file giusto.",
        },
    ),
    ErrorCode(
        "CSR_NON_LEGGIBILE", RequestRejected, "table",
        "Il file non è una richiesta di certificato PKCS#10, né in formato PEM né in "
        "formato DER: invia il file .csr generato insieme alla tua chiave.",
        {
            "pem_danneggiata": "La richiesta di certificato in formato PEM è danneggiata: "
            "generala di nuovo e inviala.",
            "soggetto": "Il soggetto (Subject) della richiesta non si può leggere: genera di "
            "nuovo la richiesta, con il codice fiscale nel Common Name (CN).",
        },
    ),
    ErrorCode(
        "NON_E_UNA_CSR", RequestRejected, "table",
        "Il file è un certificato, non una richiesta di certificato: invia la richiesta "
        "PKCS#10 (CSR).",
        {
            "pem": "Il file contiene un oggetto PEM '{etichetta}', non una richiesta di "
            "certificato: invia la richiesta PKCS#10 (quella che inizia con "
            "-----BEGIN CERTIFICATE REQUEST-----).",
        },
    ),
    ErrorCode(
        "CHIAVE_PRIVATA_RICEVUTA", InputRejected, "table",
        "Il file contiene una chiave privata, che non va mai consegnata a nessuno: non è "
        "stato elaborato ed è stato messo in quarantena. Genera una nuova coppia di chiavi "
        "e invia solo la richiesta di certificato (file .csr).",
    ),
    ErrorCode(
        "CSR_HASH_DEBOLE", RequestRejected, "table",
        "La richiesta è firmata con un algoritmo non supportato: firmala con SHA-256 o un "
        "algoritmo più robusto (openssl req -sha256).",
        {
            "algoritmo": "La richiesta è firmata con {algoritmo}, che questa CA non accetta: "
            "firmala con SHA-256 o un algoritmo più robusto (openssl req -sha256).",
        },
    ),
    ErrorCode(
        "CSR_FIRMA_NON_VALIDA", RequestRejected, "table",
        "La richiesta non è firmata con la chiave che contiene (prova di possesso fallita): "
        "il file è stato alterato o generato in modo errato. Rigenerala con la tua chiave "
        "privata.",
    ),
    ErrorCode(
        "CHIAVE_TIPO_NON_AMMESSO", RequestRejected, "table",
        "Il tipo di chiave della richiesta non è supportato: " + _RSA_2048,
        {
            "ecdsa": "Questa CA non accetta chiavi ECDSA: " + _RSA_2048,
            "curva": "La curva ellittica {curva} non è ammessa: usa P-256 o P-384.",
            "tipo": "Le chiavi di tipo {tipo} non sono ammesse: " + _RSA_2048,
        },
    ),
    ErrorCode(
        "CHIAVE_DIMENSIONE_NON_AMMESSA", RequestRejected, "table",
        "La chiave RSA è di {bit} bit: usa una chiave da {minimo} a {massimo} bit "
        "(l'Agenzia chiede 2048 bit).",
    ),
    ErrorCode(
        "CHIAVE_ESPONENTE_NON_AMMESSO", RequestRejected, "table",
        "L'esponente pubblico della chiave RSA è {esponente}, ma deve essere 65537: genera "
        "una nuova coppia di chiavi con le impostazioni standard.",
    ),
    ErrorCode(
        "CHIAVE_DEBOLE", RequestRejected, "table",
        "La chiave è debole, cioè si può fattorizzare: genera una nuova coppia di chiavi.",
        {
            "fattore_piccolo": "La chiave è debole: il modulo RSA ha un fattore primo "
            "piccolo, segno di un generatore di chiavi difettoso. Genera una nuova coppia di "
            "chiavi con un software aggiornato.",
            "primi_vicini": "La chiave è debole: i due numeri primi del modulo RSA sono "
            "troppo vicini tra loro e la chiave si fattorizza con il metodo di Fermat. Genera "
            "una nuova coppia di chiavi con un software aggiornato.",
        },
    ),
    ErrorCode(
        "CN_MANCANTE", RequestRejected, "table",
        "La richiesta non ha un Common Name (CN): inserisci nel CN il codice fiscale (per "
        "esempio /CN=RSSMRA80A01H501U).",
    ),
    ErrorCode(
        "CN_MULTIPLO", RequestRejected, "table",
        "La richiesta ha più di un Common Name (CN): inseriscine uno solo, con il codice "
        "fiscale.",
    ),
    ErrorCode(
        "CODICE_FISCALE_NON_VALIDO", InputRejected, "table",
        _NOT_A_CF + ": serve il codice fiscale di 16 caratteri di una persona (come "
        "RSSMRA80A01H501U) o il numero di 11 cifre di una società.",
        {
            "carattere": _NOT_A_CF + ": c'è il carattere {carattere}, ma un codice fiscale "
            "si scrive solo con lettere A-Z e cifre 0-9.",
            "controllo": _NOT_A_CF + ": il carattere di controllo non corrisponde al resto "
            "del codice. Ricontrollalo: forse c'è un errore di battitura.",
            "parte": _NOT_A_CF + ": una sua parte non esiste (per esempio la data di "
            "nascita, o l'ufficio per il numero di una società). Ricontrollalo.",
            "tipo": "Il campo 'codice_fiscale' deve essere un testo (una stringa JSON), non "
            "{tipo}.",
        },
    ),
    ErrorCode(
        "CHIAVE_GIA_CERTIFICATA", RequestRejected, "table",
        "Questa chiave pubblica è già certificata per un altro codice fiscale: ogni persona "
        "o società deve avere la propria coppia di chiavi. Genera una nuova coppia di chiavi "
        "e invia una nuova richiesta.",
    ),
    ErrorCode(
        "CHIAVE_BLOCCATA", RequestRejected, "table",
        "Questa chiave pubblica appartiene al certificato {id_operazione}, annullato per "
        "'{motivo}': non può più essere certificata. Genera una nuova coppia di chiavi e "
        "invia una nuova richiesta.",
    ),
    ErrorCode(
        "FIRMA_NON_RIUSCITA", RequestRejected, "table",
        "La CA non è riuscita a firmare il certificato: la richiesta è stata rifiutata e "
        "l'amministratore è stato avvisato. Invia di nuovo la richiesta più tardi.",
    ),
    ErrorCode(
        "INPUT_TIPO_SCONOSCIUTO", InputRejected, "table",
        "Tipo di file non riconosciuto: invia una richiesta di certificato come file .csr "
        "oppure una richiesta di annullamento come file .json.",
        {
            "json": 'Un file .json deve essere una richiesta di annullamento, con "tipo": '
            '"annullamento".',
        },
    ),
    ErrorCode(
        "INPUT_LINK_SIMBOLICO", InputRejected, "table",
        "Il file è un collegamento simbolico: certdesk non segue mai i collegamenti. Copia "
        "in inbox/ il file della richiesta vero e proprio.",
    ),
    ErrorCode(
        "INPUT_CARTELLA", InputRejected, "table",
        "È stata inviata una cartella: metti in inbox/ direttamente i file delle richieste.",
    ),
    ErrorCode(
        "INPUT_NON_REGOLARE", InputRejected, "table",
        "Quello ricevuto non è un file normale (è una FIFO, un socket o un dispositivo): "
        "invia un file.",
    ),
    ErrorCode(
        "INPUT_NON_LEGGIBILE", InputRejected, "table",
        "Il file non si può leggere ({errore}): controllane i permessi e invialo di nuovo.",
    ),
    ErrorCode(
        "INPUT_COLLEGAMENTO_FISICO", InputRejected, "table",
        "Il file ha altri nomi (collegamenti fisici, hard link) fuori da inbox/: certdesk non "
        "legge, non modifica e non conserva un file condiviso con altre posizioni. Invia una "
        "copia della richiesta.",
    ),
    ErrorCode(
        "JSON_NON_VALIDO", CancellationRejected, "table",
        "Il file non è una richiesta di annullamento in JSON valido: " + _AGAIN,
        {
            "bom": "Il file inizia con un byte order mark (BOM): salvalo in UTF-8 senza BOM "
            "e invialo di nuovo.",
            "utf8": "Il file non è testo UTF-8 (byte non valido alla posizione {posizione}): "
            "salvalo con la codifica UTF-8 e invialo di nuovo.",
            "sintassi": "Il file non è JSON valido (riga {riga}, colonna {colonna}): " + _AGAIN,
            "annidato": "Il JSON ha troppi livelli annidati per essere una richiesta di "
            "annullamento.",
            "non_oggetto": "Il file deve contenere un solo oggetto JSON, racchiuso tra "
            "parentesi graffe.",
            "chiave_ripetuta": "La chiave {chiave!a} compare due volte nello stesso oggetto: "
            "lasciane una sola.",
            "numero": "Nel file, il valore di {posizione} è un numero di {cifre} cifre: una "
            "richiesta di annullamento non contiene numeri così lunghi.",
            "costante": "Nel file, il valore di {posizione} è {costante}, che JSON non ammette.",
            "surrogato": "Nel file, il valore di {posizione} contiene un surrogato isolato (un "
            "escape come \\ud800), che non è testo: " + _AGAIN,
            "chiave_surrogato": "Nel file, la chiave {chiave!a} contiene un surrogato isolato "
            "(un escape come \\ud800), che non è testo: " + _AGAIN,
        },
    ),
    ErrorCode(
        "CODICE_FISCALE_MANCANTE", CancellationRejected, "table",
        "Manca il campo 'codice_fiscale': indica il codice fiscale del titolare dei "
        "certificati da annullare.",
    ),
    ErrorCode(
        "ID_OPERAZIONE_NON_VALIDO", CancellationRejected, "table",
        "Il campo 'id_operazione' contiene {valore!a}, che non è un IdOperazione (nella "
        "forma AAAAMMGG-NNNNNNNNN).",
        {
            "elemento": "Il campo 'id_operazione' contiene {tipo}, che non è un IdOperazione: "
            "ogni elemento è un testo nella forma AAAAMMGG-NNNNNNNNN.",
            "tipo": "Il campo 'id_operazione' deve essere una lista di IdOperazione (testi "
            "nella forma AAAAMMGG-NNNNNNNNN), non {tipo}.",
            "troppi": "Il campo 'id_operazione' elenca {numero} certificati, ma se ne possono "
            "indicare al massimo {massimo}: il primo annullamento di un codice fiscale li "
            "annulla comunque tutti, senza elencarli.",
        },
    ),
    ErrorCode(
        "MOTIVAZIONE_NON_VALIDA", CancellationRejected, "table",
        "Il campo 'motivazione' vale {valore!a}, che non è una motivazione ammessa: usa uno "
        "di questi codici: {ammesse}.",
        {
            "tipo": "Il campo 'motivazione' è {tipo}, ma deve essere uno di questi codici: "
            "{ammesse}.",
        },
    ),
    ErrorCode("NOTA_NON_VALIDA", CancellationRejected, "table", _NOTA, _NOTA_CASES),
    ErrorCode(
        "OPERATORE_NON_VALIDO", CancellationRejected, "table", _OPERATORE, _OPERATORE_CASES
    ),
    ErrorCode(
        "NOTA_OBBLIGATORIA", CancellationRejected, "table",
        "La motivazione {motivazione} richiede una nota che la spieghi: compila il campo "
        "'nota'.",
    ),
    ErrorCode(
        "ID_OPERAZIONE_NON_TROVATO", CancellationRejected, "table",
        "Al codice fiscale {codice_fiscale} non risulta intestato nessun certificato "
        "{id_operazione}: controlla l'IdOperazione e il codice fiscale.",
    ),
    ErrorCode(
        "STATO_NON_ANNULLABILE", CancellationRejected, "table",
        "Il certificato {id_operazione} è in stato {stato}: si possono annullare solo i "
        "certificati in stato ATTIVATO.",
    ),
    ErrorCode(
        "NESSUN_CERTIFICATO_ATTIVO", CancellationRejected, "table",
        "Il codice fiscale {codice_fiscale} non ha certificati in stato ATTIVATO: non c'è "
        "nulla da annullare.",
    ),
    ErrorCode(
        "UN_SOLO_ID_OPERAZIONE", CancellationRejected, "table",
        "Solo il primo annullamento di un codice fiscale è cumulativo: dal secondo in poi "
        "indica esattamente un IdOperazione (questa richiesta ne indica {numero}).",
    ),
    ErrorCode(
        # A bug of certdesk, which the same file sent again would meet again.
        "ERRORE_INTERNO", InputRejected, "table",
        "certdesk non è riuscito a elaborare questo file per un errore interno ({errore}). "
        "L'amministratore ne trova i dettagli nel log del daemon: chiedigli come procedere "
        "prima di inviare di nuovo il file.",
        {
            "quarantena": "certdesk non è riuscito a elaborare questo file per un errore "
            "interno ({errore}); il file è stato messo in quarantena. L'amministratore ne "
            "trova i dettagli nel log del daemon: chiedigli come procedere prima di inviare "
            "di nuovo il file.",
        },
    ),
    # -- docs/contract.md section 9, the command line's codes (stderr, panels, the log) -----
    ErrorCode(
        "CA_NON_INIZIALIZZATA", CaError, "cli",
        "Nessuna CA in {cartella}: esegui prima 'certdesk init'.",
    ),
    ErrorCode(
        "CA_ESISTENTE", CaError, "cli",
        "Esiste già una CA in {cartella}: certdesk non la sovrascrive mai.",
    ),
    ErrorCode(
        "PASSPHRASE_MANCANTE", CaError, "cli",
        "Manca la passphrase della CA: imposta {variabile}, usa --passphrase-file oppure "
        "conserva {file} (lo crea 'certdesk init').",
    ),
    ErrorCode(
        "PASSPHRASE_ERRATA", CaError, "cli",
        "La passphrase non apre la chiave della CA emittente: controlla {variabile}, "
        "--passphrase-file o state/passphrase.",
    ),
    ErrorCode(
        "PERMESSI_CHIAVE_NON_SICURI", CaError, "cli",
        "{file} è leggibile dal gruppo o da altri utenti (permessi {permessi:04o}): esegui "
        "'chmod 600 {file}' e verifica chi potrebbe averlo letto.",
    ),
    ErrorCode(
        "CHIAVE_CA_NON_VALIDA", CaError, "cli",
        "state/ca/issuing.key.pem non corrisponde a state/ca/issuing.pem (è danneggiata o è "
        "stata sostituita): ripristina entrambi i file dallo stesso backup.",
    ),
    ErrorCode(
        "CA_NON_DISPONIBILE", CaError, "cli",
        "La CA non è utilizzabile: controlla i file in state/ca/.",
        {
            "passphrase_illeggibile": "Impossibile leggere il file della passphrase {file}: "
            "{errore}.",
            "passphrase_vuota": "Il file della passphrase {file} è vuoto.",
            "tipo_chiave": "La chiave della CA emittente è di un tipo non supportato "
            "({tipo}): certdesk usa chiavi RSA o ECDSA.",
            "chiave_pubblica": "Tipo di chiave pubblica non supportato: {tipo}.",
            "coppia": "La chiave {di_chi} non corrisponde al suo certificato.",
            "ski": "Il certificato della CA emittente non ha l'estensione "
            "SubjectKeyIdentifier, obbligatoria per una CA (RFC 5280, 4.2.1.2).",
            "responder_non_emesso": "Il certificato del responder OCSP non è emesso dalla CA "
            "emittente.",
            "responder_senza_eku": "Il certificato del responder OCSP non ha l'uso esteso "
            "della chiave OCSPSigning.",
        },
    ),
    ErrorCode(
        "DAEMON_GIA_ATTIVO", CertdeskError, "cli",
        "Un altro daemon certdesk (pid {pid}) è già attivo su questa home: fermalo prima di "
        "avviarne un altro (un solo daemon può firmare e cambiare gli stati).",
    ),
    ErrorCode(
        "REGISTRO_ALTERATO", LedgerTampered, "cli",
        "Il journal o il ledger in outbox/ non corrisponde all'archivio degli stati.",
        {
            "mancante": "Manca {file}, che dovrebbe riportare i dati dell'archivio degli "
            "stati: è stato cancellato o spostato.",
            "intestazione": "{file} riga 1: l'intestazione non è {colonne}.",
            "colonne": "{file} riga {riga}: {colonne} colonne invece di {attese}.",
            "catena": "{file} riga {riga} (Seq {seq}): la sua impronta (hash) non è "
            "concatenata a quella della riga precedente, quindi questa riga o la precedente è "
            "stata modificata, cancellata o spostata.",
            "evento": "{file} riga {riga} (Seq {seq}): è diversa dall'evento {evento} "
            "dell'archivio degli stati.",
            "righe_mancanti": "{file} riga {riga}: manca; il journal finisce dopo {righe} "
            "righe, ma l'archivio degli stati ha l'evento Seq {seq} e altri: sono state "
            "cancellate righe dalla fine (oppure il daemon sta ancora scrivendo).",
            "riga_diversa": "{file} riga {riga} (IdOperazione {id_operazione}): è diversa "
            "dall'archivio degli stati, che qui ha {atteso} in stato {stato}.",
            "riga_in_piu": "{file} riga {riga} (IdOperazione {id_operazione}): l'archivio "
            "degli stati non ha questa riga.",
            "riga_assente": "{file} non ha la riga dell'IdOperazione {id_operazione}.",
        },
    ),
    ErrorCode(
        "CARTELLA_SOSTITUITA", FolderReplaced, "cli",
        "{etichetta} ({cartella}) non è più la cartella su cui il daemon è partito (è stata "
        "spostata, o sostituita da un'altra cartella o da un collegamento): il daemon si "
        "ferma per non prendere né pubblicare file altrove. Rimetti in ordine la home e "
        "avvialo di nuovo.",
        {
            "scomparsa": "{etichetta} ({cartella}) non c'è più ({errore}): il daemon si "
            "ferma invece di indovinare dove sono le richieste. Rimetti a posto la cartella e "
            "avvialo di nuovo.",
            "apertura": "{cartella} è cambiata mentre il daemon la apriva: controlla chi la "
            "modifica e avvia di nuovo il daemon.",
        },
    ),
    ErrorCode(
        "OPZIONE_NON_VALIDA", CertdeskError, "cli",
        "L'opzione {opzione} deve valere almeno {minimo}.",
    ),
    ErrorCode(
        "RICEVUTA_NON_ARRIVATA", CertdeskError, "cli",
        "Nessuna ricevuta per {file} dopo {secondi:.0f} s: il daemon è in funzione "
        "('certdesk watch')?",
    ),
    ErrorCode(
        "CONFIGURAZIONE_NON_VALIDA", ConfigurationError, "cli",
        "certdesk.toml non è valido: controlla le impostazioni.",
        {
            "toml": "certdesk.toml non è un file TOML valido: {errore}.",
            "sezione": "certdesk.toml: sezione sconosciuta [{sezione}].",
            "tabella": "certdesk.toml: [{sezione}] deve essere una tabella.",
            "impostazione": "certdesk.toml: impostazione sconosciuta '{sezione}.{chiave}'.",
            "tipo": "certdesk.toml: '{sezione}.{chiave}' deve essere {tipo}, non {valore!r}.",
            "tipo_chiave": "certdesk.toml: ca.{chiave} deve essere uno tra {ammessi}.",
            "periodi": "certdesk.toml: la validità dei certificati e il periodo della CRL "
            "devono essere positivi.",
            "spazio_minimo": "certdesk.toml: daemon.min_free_mib deve essere 0 o più (MiB).",
        },
    ),
    ErrorCode(
        "ARCHIVIO_NON_DISPONIBILE", StoreError, "cli",
        "Impossibile aprire l'archivio degli stati {file}: {errore}.",
        {
            "versione_futura": "L'archivio degli stati usa la versione {versione} dello "
            "schema, di un certdesk più recente (questo conosce le versioni fino alla "
            "{ultima}): aggiorna certdesk.",
            "non_archivio": "Il database non è un archivio degli stati di certdesk (le sue "
            "tabelle: {tabelle}).",
        },
    ),
    ErrorCode(
        "REGISTRO_NON_LEGGIBILE", LedgerUnreadable, "cli",
        "{file} non si può leggere: {errore}.",
        {
            "colonne": "{file}: mancano le colonne {colonne}.",
            "data": "{file}: data non valida nella colonna {colonna} ({errore}).",
        },
    ),
    ErrorCode(
        # A bug (the store asked for a request it does not have): logged, never a rule.
        "ID_OPERAZIONE_SCONOSCIUTO", StoreError, "cli",
        "L'archivio degli stati non ha l'IdOperazione {id_operazione}.",
    ),
    ErrorCode(
        # A bug: a state change outside the contract's diagram.
        "TRANSIZIONE_NON_VALIDA", InvalidTransition, "cli",
        "{richiesta}: il passaggio da {da} a {a} non è un cambio di stato ammesso.",
        {
            "attivazione": "{non_attivabili} delle {totale} richieste da attivare non sono "
            "IN_GENERAZIONE con il seriale con cui sono state firmate.",
        },
    ),
)  # fmt: skip


def _registry(entries: tuple[ErrorCode, ...]) -> Mapping[str, ErrorCode]:
    table: dict[str, ErrorCode] = {}
    for entry in entries:
        if entry.code in table:
            raise ValueError(f"{entry.code} is registered twice")
        table[entry.code] = entry
    return MappingProxyType(table)


REGISTRY: Mapping[str, ErrorCode] = _registry(_ENTRIES)
