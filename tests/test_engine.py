"""End to end through the command line, as an integrator would use certdesk: CSRs made
by openssl dropped into inbox/, ``certdesk watch --once``, then receipts, certificates
(checked by openssl and pkilint), ledger and journal."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certdesk.records import JOURNAL_COLUMNS, LEDGER_COLUMNS
from conftest import CsrFactory, assert_kept_privately, drop, receipt, run_certdesk, tool

PERSON = "RSSMRA80A01H501U"
COMPANY = "00743110157"


def issue(home: Path, csrs: CsrFactory, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        drop(home, name, data)
    run_certdesk(home, "watch", "--once", "--workers", "1")


def ledger_rows(home: Path) -> list[dict[str, str]]:
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def pkilint_cert(path: Path) -> None:
    result = subprocess.run(
        [tool("lint_pkix_cert"), "lint", "-s", "WARNING", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


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
    archived = sorted(p.name for p in (home / "state" / "archive").glob("*/*"))
    assert archived == ["persona.csr", "societa.csr"]


def test_certificate_profile(home: Path, csrs: CsrFactory, tmp_path: Path) -> None:
    """Only the public key comes from the CSR: its other attributes and requested
    extensions (a CA:TRUE basic constraint, a SAN) are never copied."""
    key = csrs.key()
    config = tmp_path / "req.cnf"
    config.write_text(
        "[req]\ndistinguished_name=dn\nreq_extensions=ext\nprompt=no\n"
        f"[dn]\nC=US\nO=Evil Corp\nCN={PERSON}\nemailAddress=x@example.com\n"
        "[ext]\nbasicConstraints=critical,CA:TRUE\nsubjectAltName=DNS:www.example.com\n"
        "keyUsage=keyCertSign\n"
    )
    data = subprocess.run(
        ["openssl", "req", "-new", "-key", str(key), "-config", str(config), "-sha256"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    issue(home, csrs, {"x.csr": data})
    result = receipt(home, "x.csr")
    assert result["esito"] == "OK", result
    cert = x509.load_pem_x509_certificate(
        (home / "outbox" / "certs" / result["certificato"]).read_bytes()
    )
    assert cert.version is x509.Version.v3
    assert cert.serial_number > 0 and cert.serial_number.bit_length() == 159
    assert len(format(cert.serial_number, "x")) == 40
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "IT"
    ext = cert.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuing = x509.load_pem_x509_certificate((home / "outbox/ca/issuing.pem").read_bytes())
    issuer_ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    crldp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value == "http://certdesk.example/ca/issuing.crl"
    with pytest.raises(x509.ExtensionNotFound):
        ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert cert.not_valid_after_utc > cert.not_valid_before_utc
    pkilint_cert(home / "outbox" / "certs" / result["certificato"])


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
    # every refused original is kept in quarantine (0700 folders), none archived or lost
    quarantine = home / "state" / "quarantine"
    assert sorted(p.name for p in quarantine.glob("*/*")) == sorted(files)
    assert not list((home / "state" / "archive").glob("*/*"))
    for kept in quarantine.glob("*/*"):
        assert_kept_privately(kept)
    # the private key is quarantined privately and never reaches outbox/
    quarantined = next((home / "state" / "quarantine").glob("*/chiave.csr"))
    assert_kept_privately(quarantined)
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


def test_ledger_and_journal_follow_the_contract(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": b"junk"})
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == LEDGER_COLUMNS
    with open(home / "outbox" / "journal.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == JOURNAL_COLUMNS
    transitions = [(r[3], r[4]) for r in rows[1:]]
    assert sorted(transitions) == [
        ("", "IN_GENERAZIONE"), ("", "RIFIUTATO"), ("IN_GENERAZIONE", "ATTIVATO"),
    ]  # fmt: skip
    row = ledger_rows(home)[0]
    assert row["Stato"] == "ATTIVATO"
    assert row["DataRichiesta"].endswith("Z") and row["DataScadenza"].endswith("Z")
    assert row["Seriale"] == row["Seriale"].lower()
    assert run_certdesk(home, "verify-ledger").returncode == 0


def _tamper(path: Path, edit: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    if edit == "edit":
        lines[2] = lines[2].replace("IN_GENERAZIONE", "ATTIVATO", 1)
    elif edit == "delete":
        del lines[2]
    elif edit == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif edit == "truncate":
        del lines[-1]
    path.write_text("".join(lines))


@pytest.mark.parametrize("edit", ["edit", "delete", "reorder", "truncate"])
def test_verify_ledger_names_the_first_bad_journal_row(
    home: Path, csrs: CsrFactory, edit: str
) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": csrs.csr(f"/CN={COMPANY}")})
    assert run_certdesk(home, "verify-ledger").returncode == 0
    _tamper(home / "outbox" / "journal.csv", edit)
    result = run_certdesk(home, "verify-ledger", check=False)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    expected = "riga 5" if edit == "truncate" else "riga 3"
    assert "REGISTRO_ALTERATO" in line and expected in line, line


def test_verify_ledger_detects_an_edited_ledger_row(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr()})
    ledger = home / "outbox" / "ledger.csv"
    ledger.write_text(ledger.read_text().replace("ATTIVATO", "ANNULLATO"))
    result = run_certdesk(home, "verify-ledger", check=False)
    assert result.returncode == 1 and "ledger.csv riga 2" in result.stderr


def test_republish_rebuilds_the_outbox_byte_for_byte(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": csrs.csr(f"/CN={COMPANY}"), "c.csr": b"x"})
    outbox = home / "outbox"
    kept = ("certs", "receipts")
    before = {
        p.relative_to(outbox): p.read_bytes()
        for p in outbox.rglob("*")
        if p.is_file() and (p.parts[-2] in kept or p.name in ("ledger.csv", "journal.csv"))
    }
    for path in outbox.rglob("*"):
        if path.is_file():
            path.unlink()
    run_certdesk(home, "republish")
    after = {rel: (outbox / rel).read_bytes() for rel in before}
    assert after == before
    assert (outbox / "ca" / "chain.pem").exists() and (outbox / "ca" / "issuing.crl").exists()
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_ca_files_are_private_and_encrypted(home: Path) -> None:
    state = home / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("root.key.pem", "issuing.key.pem"):
        key = state / "ca" / name
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    run_certdesk(home, "watch", "--once")
    for database in state.glob("certdesk.sqlite3*"):
        assert stat.S_IMODE(database.stat().st_mode) == 0o600, database
    published = sorted(p.name for p in (home / "outbox" / "ca").iterdir())
    assert {"root.pem", "issuing.pem", "chain.pem"} <= set(published)


def test_ca_certificates_lint_clean(home: Path) -> None:
    for name in ("root.pem", "issuing.pem"):
        pkilint_cert(home / "outbox" / "ca" / name)
    issuing = x509.load_pem_x509_certificate((home / "outbox/ca/issuing.pem").read_bytes())
    basic = issuing.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca and basic.path_length == 0


def test_init_refuses_to_overwrite(home: Path) -> None:
    result = run_certdesk(home, "init", check=False)
    assert result.returncode == 1
    assert "CA_ESISTENTE" in result.stderr and "Traceback" not in result.stderr


def test_daemon_refuses_a_key_readable_by_others(home: Path) -> None:
    os.chmod(home / "state" / "ca" / "issuing.key.pem", 0o644)
    result = run_certdesk(home, "watch", "--once", check=False)
    assert result.returncode == 1
    assert "PERMESSI_CHIAVE_NON_SICURI" in result.stderr and "Traceback" not in result.stderr


def test_wrong_passphrase_is_one_clear_line(home: Path) -> None:
    result = run_certdesk(
        home, "watch", "--once", check=False, env={"CERTDESK_CA_PASSPHRASE": "wrong"}
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "PASSPHRASE_ERRATA" in result.stderr


def test_a_swapped_issuing_key_is_refused_at_start(home: Path) -> None:
    """The key is loaded without OpenSSL's slow RSA check; the probe signature against the
    issuing certificate still stops a key that is not the certificate's."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from conftest import PASSPHRASE

    key_path = home / "state" / "ca" / "issuing.key.pem"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    result = run_certdesk(home, "watch", "--once", check=False)
    assert result.returncode == 1
    assert "CHIAVE_CA_NON_VALIDA" in result.stderr and "Traceback" not in result.stderr


def test_init_without_passphrase_generates_one(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    (home).mkdir()
    (home / "certdesk.toml").write_text('[ca]\nroot_key = "rsa2048"\nissuing_key = "rsa2048"\n')
    env = {k: v for k, v in os.environ.items() if k != "CERTDESK_CA_PASSPHRASE"}
    result = subprocess.run(
        [tool("certdesk"), "--home", str(home), "init"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "state/passphrase" in result.stdout
    secret = home / "state" / "passphrase"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    issuing = (home / "state" / "ca" / "issuing.key.pem").read_bytes()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    load_pem_private_key(issuing, password=secret.read_bytes().strip())


def test_status_formats_and_filters(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": csrs.csr(f"/CN={COMPANY}"), "c.csr": b"x"})
    table = run_certdesk(home, "status").stdout
    assert "Data richiesta" in table and PERSON in table
    import re

    assert re.search(r"\b\d{2}/\d{2}/\d{4}\b", table)
    rows = json.loads(
        run_certdesk(home, "status", "--format", "json", "--stato", "ATTIVATO").stdout
    )
    assert {r["codice_fiscale"] for r in rows} == {PERSON, COMPANY}
    only = json.loads(
        run_certdesk(home, "status", "--format", "json", "--codice-fiscale", PERSON.lower()).stdout
    )
    assert [r["codice_fiscale"] for r in only] == [PERSON]
    as_csv = run_certdesk(home, "status", "--format", "csv", "--stato", "RIFIUTATO").stdout
    parsed = list(csv.DictReader(as_csv.splitlines()))
    assert len(parsed) == 1 and parsed[0]["Esito"] == "CSR_NON_LEGGIBILE"
    bad = run_certdesk(home, "status", "--codice-fiscale", "XYZ", check=False)
    assert bad.returncode == 1 and "CODICE_FISCALE_NON_VALIDO" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_missing_ca_is_a_clear_error(tmp_path: Path) -> None:
    result = run_certdesk(tmp_path, "watch", "--once", check=False)
    assert result.returncode == 1
    assert "CA_NON_INIZIALIZZATA" in result.stderr and "certdesk init" in result.stderr


def test_restart_rebuilds_the_ledger_only_when_it_may_be_stale(
    home: Path, csrs: CsrFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean start leaves ledger.csv alone (a rebuild costs seconds at a million rows);
    a state change committed without its ledger update (a crash in between) is repaired."""
    from certdesk.clock import now_utc
    from certdesk.home import Home
    from certdesk.store import Store
    from conftest import PASSPHRASE

    issue(home, csrs, {"a.csr": csrs.csr()})
    ledger = home / "outbox" / "ledger.csv"
    inode = ledger.stat().st_ino
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert ledger.stat().st_ino == inode  # not rewritten

    id_op = ledger_rows(home)[0]["IdOperazione"]
    store = Store(Home.at(home).database)
    try:
        with store.transaction() as txn:  # what a kill right after this commit leaves
            txn.cancel(id_op, now=now_utc(), motivazione="ALTRO", nota="n", operatore="t")
    finally:
        store.close()
    assert ledger_rows(home)[0]["Stato"] == "ATTIVATO"
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert ledger_rows(home)[0]["Stato"] == "ANNULLATO"
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_leaf_serials_are_112_random_bits_after_the_time() -> None:
    """A leaf serial: a leading 1, the time in milliseconds, 112 random bits. Serials made
    one after the other sort as made (their text too), so the store's UNIQUE index takes
    them side by side; the random part is never repeated."""
    import time

    from certdesk.authority import leaf_serial

    before = time.time_ns() // 1_000_000
    serials = [leaf_serial() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert all(s.bit_length() == 159 for s in serials)
    assert all(before <= (s >> 112) - (1 << 46) <= after for s in serials)
    assert len({s & ((1 << 112) - 1) for s in serials}) == len(serials)
    times = [s >> 112 for s in serials]
    assert times == sorted(times)
    texts = [format(s, "x") for s in serials]
    assert sorted(texts, key=lambda t: int(t, 16)) == sorted(texts)  # text order = number order
    # 112 random bits: about half of them set, on average (a stuck generator would not be)
    ones = sum(bin(s & ((1 << 112) - 1)).count("1") for s in serials) / len(serials)
    assert 50 < ones < 62
