"""The error codes of docs/contract.md section 9's table: the refusals of an input file.

These are the codes a receipt can carry: a CSR, its key and its codice fiscale, the input
file itself (its type, size, links), an annullamento, and the internal error.
``certdesk.codes`` registers them; ``codes_entry`` says what an entry holds.
"""

from __future__ import annotations

from .codes_entry import ErrorCode
from .errors import CancellationRejected, InputRejected, RequestRejected

__all__ = ["INPUT_CODES"]


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

INPUT_CODES: tuple[ErrorCode, ...] = (
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
        {  # the certificate came through another channel: its IdOperazione is not shown
            "altro_canale": "Questa chiave pubblica appartiene a un certificato annullato "
            "per '{motivo}': non può più essere certificata. Genera una nuova coppia di "
            "chiavi e invia una nuova richiesta.",
        },
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
)  # fmt: skip
