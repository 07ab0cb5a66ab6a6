"""Large stores made directly in SQLite: a million certificates in a minute, not a day.

Rows look like the daemon's own: time-ordered IdOperazione, a codice fiscale with one or
more requests, the usual mix of states (issued, expired, cancelled, refused), receipts,
and a hash-chained journal whose ``journal.csv`` matches the store. Certificate and CSR
bytes are opaque blobs of realistic size (nothing here parses them); every OCSP response
is marked fresh, so the daemon has nothing to re-sign at start.

``python -m benchmarks.scale crl --home H --entries N`` runs the CRL case in a process of
its own, so that its peak memory is the CRL's alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certdesk.authority import leaf_serial
from certdesk.clock import format_utc
from certdesk.records import GENESIS_HASH, JOURNAL_COLUMNS, chain_hash, csv_line
from certdesk.store import Store

from .corpus import codice_fiscale

__all__ = ["Population", "populate"]

# Stored codici fiscali start here, far from the CSR corpus' (which start at 0), so that
# a cancellation filed for a corpus codice fiscale never touches a synthetic row.
CF_OFFSET = 10_000_000
_REASONS = (
    "CHIAVE_SMARRITA",
    "ATTIVITA_CESSATA",
    "FURTO_CERTIFICATO",
    "RINNOVO_SCADENZA",
    "MALFUNZIONAMENTO",
    "ALTRO",
)
_VALIDITY = timedelta(days=1095)
_SPAN = timedelta(days=4 * 365)  # requests spread over four years: a quarter expired
_CERT_BLOB = os.urandom(1150)  # the size of a real leaf in DER
_CSR_BLOB = os.urandom(680)
_COLUMNS = (
    "id_operazione", "codice_fiscale", "profilo", "stato", "data_richiesta", "esito",
    "file_origine", "claim", "input_sha256", "spki_sha256", "csr_der", "data_scadenza",
    "seriale", "impronta_sha256", "cert_der", "motivazione", "data_annullamento", "nota",
    "operatore", "ocsp_until",
)  # fmt: skip


@dataclass(frozen=True)
class Population:
    count: int
    seconds: float
    sample_cf: list[str]
    sample_id: list[str]
    states: dict[str, int]


def _rows(count: int, now: datetime, revoked_only: bool) -> Iterator[tuple[object, ...]]:
    start = now - _SPAN
    step = _SPAN / max(count, 1)
    for k in range(count):
        richiesta = start + step * k
        day = richiesta
        id_op = f"{day:%Y%m%d}-{k + 1:09d}"
        cf = codice_fiscale(CF_OFFSET + (k * 5) // 6)  # about 1.2 requests per person
        profilo = "SOCIETA" if len(cf) == 11 else "PERSONA_FISICA"
        scadenza = richiesta + _VALIDITY
        bucket = k % 100
        motivazione = annullamento = ""
        if revoked_only:
            stato = "ANNULLATO"
            scadenza = now + _VALIDITY - step * k / 2  # all still valid: all in the CRL
            annullamento = format_utc(now - timedelta(seconds=count - k))
            motivazione = _REASONS[k % len(_REASONS)]
        elif bucket < 5:
            stato = "RIFIUTATO"
        elif bucket < 12:
            stato = "ANNULLATO"
            # Some time into the validity, never after now.
            when = richiesta + (scadenza - richiesta) * ((k % 7) / 10)
            annullamento = format_utc(min(when, now - timedelta(seconds=count - k)))
            motivazione = _REASONS[k % len(_REASONS)]
        elif scadenza < now + timedelta(days=1):  # never one that expires during the run
            stato = "SCADUTO"
        else:
            stato = "ATTIVATO"
        issued = stato != "RIFIUTATO"
        yield (
            id_op,
            cf,
            profilo,
            stato,
            format_utc(richiesta),
            "OK" if issued else "CSR_FIRMA_NON_VALIDA",
            f"gestionale-{k:08d}.csr",
            f"{richiesta:%Y%m%dT%H%M%S%f}-{k:08x}",
            hashlib.sha256(k.to_bytes(8, "big")).hexdigest(),
            secrets.token_hex(32) if issued else "",
            None if revoked_only else k.to_bytes(8, "big") + _CSR_BLOB,
            format_utc(scadenza) if issued else None,
            format(leaf_serial(richiesta), "x") if issued else None,  # as the daemon makes them
            secrets.token_hex(32) if issued else "",
            None if revoked_only or not issued else k.to_bytes(8, "big") + _CERT_BLOB,
            motivazione,
            annullamento or None,
            "",
            "amministratore" if stato == "ANNULLATO" else "",
            format_utc(now + timedelta(days=7)) if stato in ("ATTIVATO", "ANNULLATO") else "",
        )


def _fast_line(fields: list[str]) -> str:
    # Our synthetic fields never need CSV quoting, so the line is a plain join (checked).
    return ",".join(fields) + "\n"


def populate(
    home: Path,
    count: int,
    *,
    revoked_only: bool = False,
    now: datetime | None = None,
    samples: int = 1000,
) -> Population:
    """Fill ``home``'s store with ``count`` requests (and, unless ``revoked_only``, their
    receipts, journal events and ``outbox/journal.csv``)."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    db = home / "state" / "certdesk.sqlite3"
    Store(db).close()  # the schema
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    if revoked_only:
        # Indexes are built once at the end (Store() re-creates them): far faster in bulk,
        # and only the CRL is read from this store.
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(f"DROP INDEX {name}")
    else:
        # Indexes kept while rows go in, as a store grown by the daemon has them: an index
        # built at the end packs its pages so that the first new rows split one at nearly
        # every insert (measured: 7.9 pages written per request instead of 5.2), and the
        # burst at 1M would measure the fixture. The cache holds them while they grow (and
        # the population is no slower).
        conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("BEGIN")
    states: dict[str, int] = {}
    later: list[tuple[str, str, str, str, str, str]] = []
    events: list[tuple[object, ...]] = []
    journal_path = home / "outbox" / "journal.csv"
    # Closed below, after the last event; a failed population throws the home away.
    journal = None if revoked_only else open(journal_path, "w", encoding="utf-8")  # noqa: SIM115
    head, seq = GENESIS_HASH, 0
    stride = max(1, count // samples)
    sample_cf: list[str] = []
    sample_id: list[str] = []

    def event(data: str, id_op: str, da: str, a: str, motivazione: str, origine: str) -> None:
        nonlocal head, seq
        seq += 1
        fields = [str(seq), data, id_op, da, a, motivazione, origine]
        line = _fast_line(fields)
        if seq <= 3:
            assert (
                chain_hash(head, fields)
                == hashlib.sha256((head + "\n" + line).encode()).hexdigest()
            ), "synthetic journal fields need CSV quoting"
        head = hashlib.sha256((head + "\n" + line).encode()).hexdigest()
        events.append((seq, data, id_op, da, a, motivazione, origine, head))
        assert journal is not None
        journal.write(line[:-1] + "," + head + "\n")

    if journal is not None:
        journal.write(csv_line(JOURNAL_COLUMNS))
    batch: list[tuple[object, ...]] = []
    inputs: list[tuple[object, ...]] = []

    def flush() -> None:
        conn.executemany(
            f"INSERT INTO requests ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 20)})",
            batch,
        )
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", events)
        conn.executemany("INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, 0, 1)", inputs)
        batch.clear()
        events.clear()
        inputs.clear()

    for k, row in enumerate(_rows(count, now, revoked_only)):
        batch.append(row)
        id_op, cf, stato = str(row[0]), str(row[1]), str(row[3])
        richiesta, origine, claim = str(row[4]), str(row[6]), str(row[7])
        states[stato] = states.get(stato, 0) + 1
        if k % stride == 0:
            sample_cf.append(cf)
            sample_id.append(id_op)
        if not revoked_only:
            if stato == "RIFIUTATO":
                event(richiesta, id_op, "", "RIFIUTATO", "", origine)
            else:
                event(richiesta, id_op, "", "IN_GENERAZIONE", "", origine)
                event(richiesta, id_op, "IN_GENERAZIONE", "ATTIVATO", "", origine)
            if stato == "ANNULLATO":
                later.append((str(row[16]), id_op, "ATTIVATO", "ANNULLATO", str(row[15]), origine))
            elif stato == "SCADUTO":
                later.append((str(row[11]), id_op, "ATTIVATO", "SCADUTO", "", origine))
            receipt = {
                "file": origine,
                "tipo": "richiesta",
                "esito": row[5] if row[5] == "OK" else "KO",
                "id_operazione": id_op,
                "stato": "ATTIVATO" if stato != "RIFIUTATO" else "RIFIUTATO",
                "certificato": f"{id_op}.pem" if stato != "RIFIUTATO" else None,
                "data_richiesta": richiesta,
                "data_scadenza": row[11],
                "errori": [],
            }
            inputs.append((claim, origine, "richiesta", row[8], richiesta, json.dumps(receipt)))
        if len(batch) >= 20_000:
            flush()
    later.sort()
    for data, id_op, da, a, motivazione, origine in later:
        event(data, id_op, da, a, motivazione, origine)
        if len(events) >= 20_000:
            flush()
    flush()
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)", (str(count + 1),)
    )
    conn.execute("COMMIT")
    conn.close()
    if journal is not None:
        journal.close()
    Store(db).close()  # builds the indexes
    return Population(
        count, time.perf_counter() - started, sample_cf, sample_id, dict(sorted(states.items()))
    )


def _crl_case(home: Path, entries: int) -> dict[str, float]:
    """Populate ``entries`` cancelled certificates, then build and publish the CRL once."""
    from cryptography import x509

    from certdesk.authority import CertificateAuthority, resolve_passphrase
    from certdesk.config import load_config
    from certdesk.home import Home
    from certdesk.revocation_publisher import RevocationPublisher

    populate(home, entries, revoked_only=True)
    where = Home.at(home)
    config = load_config(where.root)
    passphrase, _ = resolve_passphrase(where)
    ca = CertificateAuthority.load(where, config, passphrase)
    store = Store(where.database)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    RevocationPublisher(where, config, ca, store).publish_crl(datetime.now(UTC))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    der = (where.outbox / "ca" / "issuing.crl").read_bytes()
    listed = len(x509.load_der_x509_crl(der))
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_mb": before,
        "entries": listed,
        "bytes": len(der),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    sub = parser.add_subparsers(dest="command", required=True)
    crl = sub.add_parser("crl")
    crl.add_argument("--home", type=Path, required=True)
    crl.add_argument("--entries", type=int, required=True)
    args = parser.parse_args(argv)
    result = _crl_case(args.home, args.entries)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
