"""Large stores made in bulk (``Store.bulk_load``): a million certificates in minutes,
not a day.

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
import multiprocessing
import os
import resource
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from certdesk.authority import leaf_serial
from certdesk.clock import format_utc
from certdesk.records import JOURNAL_COLUMNS, csv_line
from certdesk.states import Stato
from certdesk.store import HistoricalRequest, Store

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


@dataclass(frozen=True)
class Population:
    count: int
    seconds: float
    sample_cf: list[str]
    sample_id: list[str]
    states: dict[str, int]


def _history(count: int, now: datetime, revoked_only: bool) -> Iterator[HistoricalRequest]:
    start = now - _SPAN
    step = _SPAN / max(count, 1)
    fresh_until = now + timedelta(days=7)
    for k in range(count):
        richiesta = start + step * k
        day = richiesta
        id_op = f"{day:%Y%m%d}-{k + 1:09d}"
        cf = codice_fiscale(CF_OFFSET + (k * 5) // 6)  # about 1.2 requests per person
        profilo = "SOCIETA" if len(cf) == 11 else "PERSONA_FISICA"
        scadenza = richiesta + _VALIDITY
        bucket = k % 100
        motivazione = ""
        annullamento: datetime | None = None
        if revoked_only:
            stato = Stato.ANNULLATO
            scadenza = now + _VALIDITY - step * k / 2  # all still valid: all in the CRL
            annullamento = now - timedelta(seconds=count - k)
            motivazione = _REASONS[k % len(_REASONS)]
        elif bucket < 5:
            stato = Stato.RIFIUTATO
        elif bucket < 12:
            stato = Stato.ANNULLATO
            # Some time into the validity, never after now.
            when = richiesta + (scadenza - richiesta) * ((k % 7) / 10)
            annullamento = min(when, now - timedelta(seconds=count - k))
            motivazione = _REASONS[k % len(_REASONS)]
        elif scadenza < now + timedelta(days=1):  # never one that expires during the run
            stato = Stato.SCADUTO
        else:
            stato = Stato.ATTIVATO
        issued = stato is not Stato.RIFIUTATO
        origine = f"gestionale-{k:08d}.csr"
        receipt: dict[str, Any] | None = None
        if not revoked_only:
            receipt = {
                "file": origine,
                "tipo": "richiesta",
                "esito": "OK" if issued else "KO",
                "id_operazione": id_op,
                "stato": "ATTIVATO" if issued else "RIFIUTATO",
                "certificato": f"{id_op}.pem" if issued else None,
                "data_richiesta": format_utc(richiesta),
                "data_scadenza": format_utc(scadenza) if issued else None,
                "errori": [],
            }
        yield HistoricalRequest(
            id_operazione=id_op,
            codice_fiscale=cf,
            profilo=profilo,
            stato=stato,
            data_richiesta=richiesta,
            esito="OK" if issued else "CSR_FIRMA_NON_VALIDA",
            file_origine=origine,
            claim=f"{richiesta:%Y%m%dT%H%M%S%f}-{k:08x}",
            input_sha256=hashlib.sha256(k.to_bytes(8, "big")).hexdigest(),
            receipt=receipt,
            spki_sha256=secrets.token_hex(32) if issued else "",
            csr_der=None if revoked_only else k.to_bytes(8, "big") + _CSR_BLOB,
            seriale=format(leaf_serial(richiesta), "x") if issued else "",  # as the daemon's
            data_scadenza=scadenza if issued else None,
            impronta_sha256=secrets.token_hex(32) if issued else "",
            cert_der=None if revoked_only or not issued else k.to_bytes(8, "big") + _CERT_BLOB,
            motivazione=motivazione,
            data_annullamento=annullamento,
            operatore="amministratore" if stato is Stato.ANNULLATO else "",
            ocsp_until=fresh_until if stato in (Stato.ATTIVATO, Stato.ANNULLATO) else None,
        )


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
    states: dict[str, int] = {}
    stride = max(1, count // samples)
    sample_cf: list[str] = []
    sample_id: list[str] = []

    def tallied(requests: Iterator[HistoricalRequest]) -> Iterator[HistoricalRequest]:
        for k, request in enumerate(requests):
            states[request.stato.value] = states.get(request.stato.value, 0) + 1
            if k % stride == 0:
                sample_cf.append(request.codice_fiscale)
                sample_id.append(request.id_operazione)
            yield request

    # journal.csv is written as the store chains the events, not read back from it
    # afterwards (two million rows at 1M). A failed population throws the home away.
    journal_path = home / "outbox" / "journal.csv"
    journal = None if revoked_only else open(journal_path, "w", encoding="utf-8")  # noqa: SIM115

    def write_journal(rows: list[tuple[str, ...]]) -> None:
        assert journal is not None
        journal.write("".join(map(csv_line, rows)))

    store = Store(home / "state" / "certdesk.sqlite3")
    try:
        if journal is not None:
            journal.write(csv_line(JOURNAL_COLUMNS))
        # Only the CRL is read from a revoked_only store: its indexes are built once at
        # the end, far faster in bulk. Otherwise they grow with the rows, as a store grown
        # by the daemon has them: an index built at the end packs its pages so that the
        # first new rows split one at nearly every insert (measured: 7.9 pages written
        # per request instead of 5.2), and the burst at 1M would measure the fixture.
        store.bulk_load(
            tallied(_history(count, now, revoked_only)),
            journal=not revoked_only,
            build_indexes_after=revoked_only,
            on_journal=None if journal is None else write_journal,
        )
    finally:
        store.close()
        if journal is not None:
            journal.close()
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

    # Populated in a child process: the high-water mark this process reports below must be
    # the CRL's, not the population's.
    child = multiprocessing.get_context("fork").Process(
        target=populate, args=(home, entries), kwargs={"revoked_only": True}
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"populating {entries} cancelled certificates failed")
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
