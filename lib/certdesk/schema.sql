-- The state store's schema, as a new store gets it (store.py). A store made by an older
-- version is brought here by the steps of migrations.py instead; a change to this file
-- is a new step there too (tests/test_store_schema.py checks that both agree).
-- Comments say why each index exists; what they were measured to save is in
-- docs/benchmarks.md ("Store indexes").

-- One row per request, in its current state; its history is in events.
CREATE TABLE requests (
    id_operazione TEXT PRIMARY KEY,
    codice_fiscale TEXT NOT NULL,
    profilo TEXT NOT NULL,
    stato TEXT NOT NULL,
    data_richiesta TEXT NOT NULL,
    esito TEXT NOT NULL,
    file_origine TEXT NOT NULL,
    claim TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    spki_sha256 TEXT NOT NULL DEFAULT '',
    csr_der BLOB,
    data_scadenza TEXT,
    seriale TEXT UNIQUE,
    impronta_sha256 TEXT NOT NULL DEFAULT '',
    cert_der BLOB,
    motivazione TEXT NOT NULL DEFAULT '',
    data_annullamento TEXT,
    nota TEXT NOT NULL DEFAULT '',
    operatore TEXT NOT NULL DEFAULT '',
    ocsp_until TEXT NOT NULL DEFAULT ''
-- The issuing CA that signs (or signed) the request's certificate, chosen with its serial
-- (issuers.py): every request of a store made before rollovers belongs to the first.
-- Written as ALTER TABLE ADD COLUMN leaves it in a migrated store (migrations.py, step 6).
-- Then the channel the request came through (channels.py): '' for the top-level inbox/,
-- which every request of a store made before channels came through (step 8).
, emittente TEXT NOT NULL DEFAULT 'gen1', canale TEXT NOT NULL DEFAULT '');
-- The OCSP responses to sign next, the stalest first (Store.ocsp_due). Partial: only
-- certificates that are valid or cancelled have a response to keep fresh.
CREATE INDEX requests_ocsp ON requests (ocsp_until)
    WHERE stato IN ('ATTIVATO', 'ANNULLATO');
-- A person's requests (status lookup, annullamento). By codice fiscale alone: a person
-- has a handful of rows and the state is filtered on them, so a change of state leaves
-- this index alone.
CREATE INDEX requests_codice_fiscale ON requests (codice_fiscale);
-- A key's requests (a key certified once; a repeated input, which has the same key), by
-- the first 64 bits of the key's hash; the whole hash is compared on the rows found. A
-- key hash is random, so each request inserts at a random place in this index; entries
-- of 16 characters instead of 64 fit four times as many per page, which then fill and
-- split less often.
-- Partial: a request refused before its key was read has none.
CREATE INDEX requests_spki_prefix ON requests (substr(spki_sha256, 1, 16))
    WHERE spki_sha256 != '';
-- A channel's own rows, for its outbox/<canale>/ledger.csv (outbox_channels.py).
-- Partial: the default channel's requests, every request of a home without channels,
-- are in no page of it.
CREATE INDEX requests_canale ON requests (canale, id_operazione) WHERE canale != '';
-- What a claimed input became (a start-up after a crash).
CREATE INDEX requests_claim ON requests (claim);
-- Certificates past their expiry (by state, then date) and requests left being issued.
CREATE INDEX requests_stato_scadenza ON requests (stato, data_scadenza);
-- The CRL's rows in its order, read from this index alone (it covers the query, stato
-- included) instead of from cancelled rows scattered over the whole table. Partial, so
-- issuing never writes it; a row enters it when it is cancelled.
-- By issuer first: each issuing CA has a CRL of its own.
CREATE INDEX requests_revoked
    ON requests (emittente, data_annullamento, seriale, motivazione, data_scadenza, stato)
    WHERE stato = 'ANNULLATO';

-- The journal: every change of state, hash-chained in seq order (journal.csv's rows).
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    data TEXT NOT NULL,
    id_operazione TEXT NOT NULL,
    da_stato TEXT NOT NULL,
    a_stato TEXT NOT NULL,
    motivazione TEXT NOT NULL,
    file_origine TEXT NOT NULL,
    hash TEXT NOT NULL
-- The request's channel, which the hash covers when it is not '' (records.journal_hashed).
, canale TEXT NOT NULL DEFAULT '');

-- Every claimed input file and its receipt.
CREATE TABLE inputs (
    claim TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    tipo TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    received TEXT NOT NULL,
    receipt TEXT,
    quarantined INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
-- Inputs left unfinished (start-up). Partial: nearly every input is done, and is in no
-- index page at all.
CREATE INDEX inputs_pending ON inputs (done) WHERE done = 0;

-- Where each input's original is kept (archive.py): ``size`` bytes at ``start`` in
-- ``pack``, a day's file of state/archive/ or state/quarantine/ ('archive/20261127.pack'),
-- appended and made durable before this row commits. ``pruned``: when the retention
-- setting deleted it (its pack, or a folder of an older version: then pack is '').
CREATE TABLE originals (
    claim TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    start INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    pruned TEXT
);
-- A pack's end as the store knows it (the next append goes there; bytes past it are a
-- torn or uncommitted tail), and a pack's rows when retention deletes it.
CREATE INDEX originals_pack ON originals (pack, start);
-- The issuing CAs made by certdesk rollover (the first, init's "gen1", is every home's
-- and is not listed): from when each signs new certificates.
CREATE TABLE emittenti (
    nome TEXT PRIMARY KEY,
    generazione INTEGER NOT NULL UNIQUE,
    attivo_dal TEXT NOT NULL,
    creato TEXT NOT NULL
);

-- The integrators' channels made by certdesk canale add (the default channel, '', and the
-- administrators', '@admin', are every home's and are not listed): the Unix group that
-- owns their folders ('' for none), and when each was retired.
CREATE TABLE canali (
    nome TEXT PRIMARY KEY,
    gruppo TEXT NOT NULL,
    creato TEXT NOT NULL,
    ritirato TEXT
);

-- Counters and marks: next_id, crl_number, ledger_current, crl_next_update.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
