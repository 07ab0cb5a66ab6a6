"""The CA (``authority.py``): the leaf profile and serials, ``certdesk init`` and the files it
makes, and the CA keys refused at start when unsafe, wrong or missing.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import PERSON, CsrFactory, issue, pkilint_cert, receipt, run_certdesk, tool


# -- what a leaf certificate holds ---------------------------------------------------------
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


# -- certdesk init and the CA's files ------------------------------------------------------
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


# -- the CA keys at start ------------------------------------------------------------------
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


def test_missing_ca_is_a_clear_error(tmp_path: Path) -> None:
    result = run_certdesk(tmp_path, "watch", "--once", check=False)
    assert result.returncode == 1
    assert "CA_NON_INIZIALIZZATA" in result.stderr and "certdesk init" in result.stderr
