"""Issuing (``operations/issuing.py``): requests as an integrator drops them, through the
command line (CSRs made by openssl, ``certdesk watch --once``, certificates checked by openssl
and pkilint, refusals coded), on a live daemon, and the pipelined batch of an engine in this
process: chunk k+1 goes to the signers before chunk k is published, and with chunks of 2
repeats, key conflicts and signing failures cross chunk boundaries; the serial and validity
are committed before the signature.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from archive_support import assert_packs_private, kept_by_name, kept_originals
from cryptography import x509
from cryptography.x509.oid import NameOID
from daemon_support import QUICK, ThreadDaemon, certificates, make_csr, wait_receipt
from engine_support import cf_n, csr_for, key_n

from certdesk.authority import CertificateAuthority, IssuedCertificate
from certdesk.intake import claim
from certdesk.service import Engine
from certdesk.signing import CheckJob, InProcessSigner, PendingChecks, PendingSignatures, SignJob
from certdesk.store import Store
from conftest import (
    COMPANY,
    PERSON,
    CsrFactory,
    drop,
    issue,
    ledger_rows,
    pkilint_cert,
    receipt,
)


# -- through the command line --------------------------------------------------------------
def test_valid_requests_are_issued_and_verify(home: Path, csrs: CsrFactory) -> None:
    issue(
        home,
        csrs,
        {
            "persona.csr": csrs.csr(f"/CN={PERSON}"),
            "societa.csr": csrs.csr(f"/CN={COMPANY}", der=True),
        },
    )
    ca = home / "outbox" / "ca"
    for name, cf in (("persona.csr", PERSON), ("societa.csr", COMPANY)):
        result = receipt(home, name)
        assert result["esito"] == "OK", result
        assert result["stato"] == "ATTIVATO"
        assert result["errori"] == []
        assert result["certificato"] == f"{result['id_operazione']}.pem"
        cert_path = home / "outbox" / "certs" / result["certificato"]
        verified = subprocess.run(
            ["openssl", "verify", "-CAfile", str(ca / "root.pem"), "-untrusted",
             str(ca / "issuing.pem"), "-purpose", "sslclient", str(cert_path)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stderr
        pkilint_cert(cert_path)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cf
    rows = ledger_rows(home)
    assert [r["CodiceFiscale"] for r in rows] == [PERSON, COMPANY]
    assert {r["Profilo"] for r in rows} == {"PERSONA_FISICA", "SOCIETA"}
    # originals are archived, never deleted
    assert not list((home / "inbox").iterdir())
    kept = kept_originals(home)
    assert sorted(k.name for k in kept if not k.quarantined) == ["persona.csr", "societa.csr"]
    assert all(k.packed and k.data for k in kept)


def test_every_broken_input_gets_its_coded_receipt(home: Path, csrs: CsrFactory) -> None:
    key = csrs.key()
    cert_pem = subprocess.run(
        ["openssl", "req", "-x509", "-key", str(key), "-subj", f"/CN={PERSON}", "-days", "1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    tampered = bytearray(csrs.csr(der=True))
    tampered[-1] ^= 1
    files = {
        "vuoto.csr": b"",
        "spazzatura.csr": b"\x00\x01 not a request",
        "certificato.csr": cert_pem,
        "chiave.csr": key.read_bytes(),
        "firma.csr": bytes(tampered),
        "sha1.csr": csrs.csr(digest="-sha1"),
        "corta.csr": csrs.csr(bits=1024),
        "ec.csr": csrs.csr(key=csrs.key(algorithm="ec")),
        "senza-cn.csr": csrs.csr("/O=Esempio"),
        "cf-errato.csr": csrs.csr("/CN=RSSMRA80A01H501X"),
        "enorme.csr": b"A" * (64 * 1024 + 1),
        "note.txt": b"hello",
        "altro.json": b'{"tipo": "boh"}',
    }
    issue(home, csrs, files)
    expected = {
        "vuoto.csr": "FILE_VUOTO",
        "spazzatura.csr": "CSR_NON_LEGGIBILE",
        "certificato.csr": "NON_E_UNA_CSR",
        "chiave.csr": "CHIAVE_PRIVATA_RICEVUTA",
        "firma.csr": "CSR_FIRMA_NON_VALIDA",
        "sha1.csr": "CSR_HASH_DEBOLE",
        "corta.csr": "CHIAVE_DIMENSIONE_NON_AMMESSA",
        "ec.csr": "CHIAVE_TIPO_NON_AMMESSO",
        "senza-cn.csr": "CN_MANCANTE",
        "cf-errato.csr": "CODICE_FISCALE_NON_VALIDO",
        "enorme.csr": "FILE_TROPPO_GRANDE",
        "note.txt": "INPUT_TIPO_SCONOSCIUTO",
        "altro.json": "INPUT_TIPO_SCONOSCIUTO",
    }
    for name, code in expected.items():
        result = receipt(home, name)
        assert result["esito"] == "KO", (name, result)
        assert [e["codice"] for e in result["errori"]] == [code], (name, result)
        assert result["errori"][0]["messaggio"]
    rows = {r["FileOrigine"]: r for r in ledger_rows(home)}
    for name, code in expected.items():
        if name.endswith(".csr"):
            assert rows[name]["Stato"] == "RIFIUTATO" and rows[name]["Esito"] == code
    assert not list((home / "outbox" / "certs").iterdir())
    # every refused original is kept in quarantine (0600 packs in 0700 folders), none
    # archived or lost, each as it was dropped
    kept = kept_by_name(home)
    assert sorted(kept) == sorted(files) and all(k.quarantined for k in kept.values())
    assert not list((home / "state" / "archive").glob("*.pack"))
    assert_packs_private(home)
    for name, data in files.items():
        assert kept[name].data == data, name
    # the private key is quarantined privately and never reaches outbox/
    assert kept["chiave.csr"].packed
    key_body = key.read_text().splitlines()[2]
    for path in (home / "outbox").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"PRIVATE KEY-----" not in text and key_body.encode() not in text, path


def test_key_certified_for_another_codice_fiscale(home: Path, csrs: CsrFactory) -> None:
    key = csrs.key()
    issue(home, csrs, {"first.csr": csrs.csr(f"/CN={PERSON}", key=key)})
    issue(
        home,
        csrs,
        {
            "same-key-other.csr": csrs.csr(f"/CN={COMPANY}", key=key),
            "same-key-same.csr": csrs.csr(f"/CN={PERSON}", key=key, digest="-sha384"),
        },
    )
    assert receipt(home, "first.csr")["esito"] == "OK"
    refused = receipt(home, "same-key-other.csr")
    assert refused["errori"][0]["codice"] == "CHIAVE_GIA_CERTIFICATA"
    # the same person may certify the same key again (a renewal)
    assert receipt(home, "same-key-same.csr")["esito"] == "OK"


def test_identical_csr_again_is_an_idempotent_retry(home: Path, csrs: CsrFactory) -> None:
    data = csrs.csr()
    issue(home, csrs, {"a1.csr": data, "a2.csr": data})
    issue(home, csrs, {"a3.csr": data})
    first = receipt(home, "a1.csr")
    assert first["esito"] == "OK" and "ripetizione" not in first
    for name in ("a2.csr", "a3.csr"):
        again = receipt(home, name)
        assert again["esito"] == "OK" and again["ripetizione"] is True
        assert again["id_operazione"] == first["id_operazione"]
    assert len(list((home / "outbox" / "certs").iterdir())) == 1
    assert len(ledger_rows(home)) == 1


# -- exactly once, on a live daemon --------------------------------------------------------
@pytest.mark.usefixtures("passphrase_env", "no_thread_leaks")
def test_byte_identical_request_is_an_idempotent_retry(home: Path) -> None:
    data = make_csr(60)
    drop(home, "same-batch-a.csr", data)
    drop(home, "same-batch-b.csr", data)
    with ThreadDaemon(home, **QUICK):
        a = wait_receipt(home, "same-batch-a.csr")
        b = wait_receipt(home, "same-batch-b.csr")
        drop(home, "next-day.csr", data)
        c = wait_receipt(home, "next-day.csr")
    assert a["esito"] == b["esito"] == c["esito"] == "OK"
    assert a["id_operazione"] == b["id_operazione"] == c["id_operazione"]
    assert [r.get("ripetizione") for r in (a, b, c)] == [None, True, True]
    assert len(certificates(home)) == 1
    ledger = (home / "outbox" / "ledger.csv").read_text().splitlines()
    assert len(ledger) == 2  # the header and one request


# -- the pipelined batch -------------------------------------------------------------------
def _drop_all(engine: Engine, files: Sequence[tuple[str, bytes]]) -> list[dict[str, object]]:
    for name, data in files:
        (engine.home.inbox / name).write_bytes(data)
    claims = [c for name, _ in files if (c := claim(engine.home, name)) is not None]
    outcomes = engine.process(claims)
    assert [o.file for o in outcomes] == [name for name, _ in files]
    receipts = []
    for name, _ in files:
        path = engine.home.outbox / "receipts" / f"{name}.json"
        receipts.append(json.loads(path.read_text(encoding="utf-8")))
    return receipts


def test_pipeline_across_chunks(engine: Engine) -> None:
    first = csr_for(cf_n(1), key_n(0))
    files = [
        ("a.csr", first),
        ("b.csr", csr_for(cf_n(2), key_n(1))),
        ("c.csr", first),  # a repeat of a request two chunks back: same answer
        ("d.csr", csr_for(cf_n(3), key_n(1))),  # b's key for another person: refused
        ("e.csr", b"not a request"),
        ("f.csr", csr_for(cf_n(4), key_n(2))),
        ("g.csr", csr_for(cf_n(5), key_n(3))),
    ]
    receipts = _drop_all(engine, files)
    esiti = [(r["esito"], (r["errori"] or [{"codice": ""}])[0]["codice"]) for r in receipts]
    assert esiti == [
        ("OK", ""),
        ("OK", ""),
        ("OK", ""),
        ("KO", "CHIAVE_GIA_CERTIFICATA"),
        ("KO", "CSR_NON_LEGGIBILE"),
        ("OK", ""),
        ("OK", ""),
    ]
    assert receipts[2]["id_operazione"] == receipts[0]["id_operazione"]
    assert receipts[2].get("ripetizione") is True
    # Every accepted request has its certificate, a ledger row in order, and is done.
    ids = [r["id_operazione"] for r in receipts]
    for r in receipts:
        if r["esito"] == "OK":
            assert (engine.home.outbox / "certs" / f"{r['id_operazione']}.pem").exists()
    ledger = engine.publisher.ledger.read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in ledger] == sorted(set(ids))
    assert engine.store.pending_inputs() == []
    assert list(engine.home.work.iterdir()) == []
    # The journal and ledger match the store.
    from certdesk.verify import verify_journal, verify_ledger

    verify_journal(engine.publisher.journal, engine.store)
    verify_ledger(engine.publisher.ledger, engine.store)


class _FailSecond:
    """Signs in this process, but the second submitted chunk fails."""

    workers = 1

    def __init__(self, inner: InProcessSigner) -> None:
        self.inner = inner
        self.calls = 0

    def submit(self, jobs: Sequence[SignJob]) -> PendingSignatures:
        self.calls += 1
        if self.calls == 2:
            jobs = [SignJob(j.codice_fiscale, b"broken", j.now) for j in jobs]
        return self.inner.submit(jobs)

    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks:
        return self.inner.submit_checks(jobs)

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        return self.submit(jobs).result()

    def close(self) -> None:
        pass


def test_a_failed_chunk_is_refused_and_the_others_issued(
    engine: Engine, ca: CertificateAuthority
) -> None:
    engine.signer.close()
    engine.signer = _FailSecond(InProcessSigner(ca))
    files = [(f"{c}.csr", csr_for(cf_n(20 + i), key_n(20 + i))) for i, c in enumerate("abcde")]
    receipts = _drop_all(engine, files)
    # chunks: [a] [b c] [d e]; the second fails as a whole
    assert [r["esito"] for r in receipts] == ["OK", "KO", "KO", "OK", "OK"]
    assert receipts[1]["errori"][0]["codice"] == "FIRMA_NON_RIUSCITA"
    assert receipts[1]["stato"] == "RIFIUTATO"


# -- the serial is reserved before the signature -------------------------------------------
class _CheckingSigner(InProcessSigner):
    """Signs in this process, after checking (through a second connection, so only what
    is committed) that the store already names each job's serial and validity."""

    def __init__(self, engine: Engine, fail: bool = False) -> None:
        super().__init__(engine.ca)
        self._db = engine.store.path
        self._fail = fail
        self.seen: list[tuple[str, str]] = []

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        other = Store(self._db)
        try:
            for job in jobs:
                assert job.serial is not None
                row = other._conn.execute(
                    "SELECT stato, data_scadenza FROM requests WHERE seriale = ?",
                    (format(job.serial, "x"),),
                ).fetchone()
                assert row is not None and row[0] == "IN_GENERAZIONE", row
                self.seen.append((format(job.serial, "x"), row[1]))
        finally:
            other.close()
        if self._fail:
            raise RuntimeError("the signing device is gone")
        return super().sign(jobs)


def test_serial_and_validity_are_committed_before_the_signature(engine: Engine) -> None:
    signer = _CheckingSigner(engine)
    engine.signer.close()
    engine.signer = signer
    names = [f"s{i}.csr" for i in range(3)]
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(csr_for(cf_n(90 + i), key_n(50 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    assert len(signer.seen) == 3
    for serial, until in signer.seen:
        (record,) = [r for r in engine.store.iter_requests() if r.seriale == serial]
        assert record.stato.value == "ATTIVATO"
        cert = x509.load_pem_x509_certificate(
            engine.publisher.certificate_path(record.id_operazione).read_bytes()
        )
        assert format(cert.serial_number, "x") == serial
        assert cert.not_valid_after_utc == record.data_scadenza
        assert until == record.data_scadenza.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_failed_signature_leaves_no_serial_in_the_ledger(engine: Engine) -> None:
    engine.signer.close()
    engine.signer = _CheckingSigner(engine, fail=True)
    (engine.home.inbox / "f.csr").write_bytes(csr_for(cf_n(95), key_n(55)))
    engine.process([c for c in [claim(engine.home, "f.csr")] if c is not None])
    (record,) = list(engine.store.iter_requests())
    assert record.stato.value == "RIFIUTATO" and record.esito == "FIRMA_NON_RIUSCITA"
    assert record.seriale == "" and record.data_scadenza is None and record.certificato == ""
    # What was published says the same: the appended ledger row equals a rebuild's, and
    # the receipt names no expiry.
    appended = engine.publisher.ledger.read_bytes()
    engine.publisher.rebuild_ledger(engine.store)
    assert appended == engine.publisher.ledger.read_bytes()
    receipt = json.loads((engine.home.outbox / "receipts" / "f.csr.json").read_text())
    assert receipt["esito"] == "KO" and receipt["data_scadenza"] in (None, "")
