"""The error codes of docs/contract.md section 9's sentence on the command line.

Refusals and faults the command line prints as ``certdesk: CODE: sentence`` (and the
panels and the daemon's log show): the CA's files and passphrase, the daemon, the ledger,
the watched folders, the configuration, the store. ``certdesk.codes`` registers them;
``codes_entry`` says what an entry holds.
"""

from __future__ import annotations

from .codes_entry import ErrorCode
from .codes_keys import TOKEN_CODES
from .errors import (
    CaError,
    CertdeskError,
    ConfigurationError,
    FolderReplaced,
    InvalidTransition,
    LedgerTampered,
    LedgerUnreadable,
    StoreError,
)

__all__ = ["CLI_CODES"]

CLI_CODES: tuple[ErrorCode, ...] = (
    # -- docs/contract.md section 9, the command line's codes (stderr, panels, the log) -----
    ErrorCode(
        "CA_NON_INIZIALIZZATA", CaError, "cli",
        "Nessuna CA in {cartella}: esegui prima 'certdesk init'.",
        {
            "in_attesa": "La CA emittente di {cartella} aspetta il suo certificato: porta "
            "{csr} alla radice ('certdesk sign-issuing'), poi esegui qui 'certdesk init "
            "--import-issuing FILE'.",
            "radice": "{cartella} è la home della sola radice (creata con --root-only): "
            "non emette certificati. Firma qui la CA emittente con 'certdesk sign-issuing'.",
        },
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
    *TOKEN_CODES,
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
        {
            "ascolto": "L'opzione --listen deve essere HOST:PORTA (per esempio "
            "127.0.0.1:8080), non {valore!a}.",
            "insieme": "Le opzioni {opzioni} di 'certdesk init' non vanno insieme.",
            "solo_pkcs11": "--use-existing-keys adotta chiavi generate in un token: vale "
            "solo con keys.provider = \"pkcs11\".",
            "archivio": "certdesk archivio vuole un IdOperazione, oppure --claim o --file "
            "(uno solo dei tre).",
        },
    ),
    ErrorCode(
        "ASCOLTO_NON_DISPONIBILE", CertdeskError, "cli",
        "Il servizio di pubblicazione non può ascoltare su {indirizzo}: {errore}. La porta è "
        "già in uso? Scegline un'altra con --listen o [publish] listen.",
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
            "conservazione": "certdesk.toml: archive.retention_days deve essere 0 (conserva "
            "tutto) o un numero di giorni.",
            "ascolto": "certdesk.toml: publish.listen deve essere HOST:PORTA (per esempio "
            "127.0.0.1:8080), non {valore!a}.",
            "url_pubblico": "certdesk.toml: publish.public_url deve essere un indirizzo "
            "http:// o https:// senza parametri (per esempio https://pki.example.it/certdesk), "
            "non {valore!a}.",
            "fornitore_chiavi": "certdesk.toml: keys.provider deve essere uno tra {ammessi}.",
            "pkcs11": "certdesk.toml: con keys.provider = \"pkcs11\" servono keys.module (il "
            "percorso della libreria PKCS#11 del token, per esempio "
            "/usr/lib/softhsm/libsofthsm2.so) e keys.token_label.",
            "fornitore_diverso": "certdesk init --keys {richiesto}: certdesk.toml dice "
            "keys.provider = \"{configurato}\". Scrivi in [keys] il fornitore voluto (e, per "
            "pkcs11, module e token_label), poi ripeti il comando.",
        },
    ),
    ErrorCode(
        "ARCHIVIO_NON_DISPONIBILE", StoreError, "cli",
        "Impossibile aprire l'archivio degli stati {file}: {errore}.",
        {
            "versione_futura": "L'archivio degli stati usa la versione {versione} dello "
            "schema, di un certdesk più recente (questo conosce le versioni fino alla "
            "{ultima}): aggiorna certdesk.",
            "versione_precedente": "L'archivio degli stati usa la versione {versione} dello "
            "schema, di un certdesk precedente (questo usa la {ultima}), e chi lo legge "
            "soltanto non lo aggiorna: avvia il daemon di questa versione (certdesk run o "
            "watch), che lo aggiorna all'avvio.",
            "assente": "Non c'è ancora un archivio degli stati: il daemon lo crea al suo "
            "primo avvio (certdesk run o watch).",
            "non_archivio": "Il database non è un archivio degli stati di certdesk (le sue "
            "tabelle: {tabelle}).",
        },
    ),
    ErrorCode(
        "ORIGINALE_NON_TROVATO", CertdeskError, "cli",
        "Nessun input con l'IdOperazione {id_operazione}: controlla il numero (certdesk "
        "status lo elenca).",
        {
            "claim": "Nessun input con il claim {claim}.",
            "file": "Nessun input ricevuto con il nome {file!a}: usa il nome scritto nel "
            "campo \"file\" della ricevuta.",
            "assente": "L'originale dell'input {claim} non è né in un pacchetto né in una "
            "cartella di state/: ripristina state/ da un backup.",
        },
    ),
    ErrorCode(
        "ORIGINALE_ELIMINATO", CertdeskError, "cli",
        "L'originale dell'input {claim} è stato eliminato il {data} secondo [archive] "
        "retention_days di certdesk.toml: se serve, cercalo in un backup di quella data.",
    ),
    ErrorCode(
        "ORIGINALE_DANNEGGIATO", CertdeskError, "cli",
        "L'originale dell'input {claim} in {pack} (dal byte {inizio}) non corrisponde alla "
        "sua impronta SHA-256: il file è stato troncato o modificato. Ripristinalo da un "
        "backup.",
    ),
    ErrorCode(
        "ORIGINALE_NON_REGOLARE", CertdeskError, "cli",
        "L'input è conservato com'era, in {percorso}, e non è un file (un collegamento "
        "simbolico, una FIFO o una cartella): esaminalo lì, senza aprirlo alla cieca.",
    ),
    ErrorCode(
        "REGISTRO_NON_LEGGIBILE", LedgerUnreadable, "cli",
        "{file} non si può leggere: {errore}.",
        {
            "colonne": "{file}: mancano le colonne {colonne}.",
            "data": "{file}: data non valida nella colonna {colonna} ({errore}).",
        },
    ),
    # -- issuing CA rollover (certdesk rollover, docs/operations.md) ----------------------
    ErrorCode(
        "ROLLOVER_NON_VALIDO", CaError, "cli",
        "Il rinnovo della CA emittente (certdesk rollover) non si può fare così.",
        {
            "radice_assente": "La chiave della radice non è in questa home ({cartella}): "
            "con la radice offline esegui 'certdesk rollover --request', firma la richiesta "
            "alla radice con 'certdesk sign-issuing', poi 'certdesk rollover --import FILE'.",
            "in_attesa": "Una richiesta di nuova CA emittente aspetta il suo certificato "
            "({csr}): importalo con 'certdesk rollover --import FILE', oppure cancella "
            "{cartella} per ricominciare.",
            "nessuna_attesa": "Nessuna richiesta di nuova CA emittente aspetta un "
            "certificato in {cartella}: esegui prima 'certdesk rollover --request'.",
            "data": "--from {valore}: serve una data ISO 8601 (2031-01-01 o "
            "2031-01-01T00:00:00Z) dentro la validità della nuova CA emittente ({dal} - {al}).",
            "radice_diversa": "{file} non è firmato dalla radice di questa home (impronta "
            "{impronta}): la nuova CA emittente deve avere la stessa radice.",
        },
    ),
    ErrorCode(
        "EMITTENTE_SCONOSCIUTO", CaError, "cli",
        "La CA emittente {emittente} non è tra quelle di questa home (manca in state/ca/ o "
        "nell'archivio degli stati): ripristina state/ca/{emittente}/ dallo stesso backup "
        "dell'archivio.",
    ),
    ErrorCode(
        # A warning, not a refusal: the log, daemon.json's "avvisi" and the panels.
        "EMITTENTE_IN_SCADENZA", CaError, "cli",
        "Il certificato della CA emittente {emittente} scade il {scadenza}: i nuovi "
        "certificati durano meno di {giorni} giorni. Esegui 'certdesk rollover' "
        "(docs/operations.md).",
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
