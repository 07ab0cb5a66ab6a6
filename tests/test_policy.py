"""The request rules (``policy.py``), on CSRs made by the openssl command line (and
cryptography for keys openssl will not make). Weak moduli are test_weakkeys.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certdesk.policy import MAX_INPUT_BYTES, inspect_request
from conftest import CsrFactory, rejected


def test_valid_person_pem(csrs: CsrFactory) -> None:
    request = inspect_request(csrs.csr("/CN=RSSMRA80A01H501U"))
    assert request.codice_fiscale.value == "RSSMRA80A01H501U"
    assert request.key_description == "RSA 2048"
    assert len(request.spki_sha256) == 64


def test_valid_company_der_with_other_attributes(csrs: CsrFactory) -> None:
    data = csrs.csr("/C=IT/O=Esempio Srl/CN=00743110157/emailAddress=a@b.it", der=True)
    assert inspect_request(data).codice_fiscale.value == "00743110157"


def test_lowercase_codice_fiscale_is_normalised(csrs: CsrFactory) -> None:
    assert inspect_request(csrs.csr("/CN=rssmra80a01h501u")).codice_fiscale.value == (
        "RSSMRA80A01H501U"
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "FILE_VUOTO"),
        (b"  \n", "FILE_VUOTO"),
        (b"hello, this is not a CSR", "CSR_NON_LEGGIBILE"),
        (b"\x30\x82\x01\x00garbage", "CSR_NON_LEGGIBILE"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
         "CSR_NON_LEGGIBILE"),
        (b"A" * (MAX_INPUT_BYTES + 1), "FILE_TROPPO_GRANDE"),
    ],
)  # fmt: skip
def test_unreadable_inputs(data: bytes, code: str) -> None:
    assert rejected(data).code == code


def test_private_key_is_refused_without_echoing_it(csrs: CsrFactory) -> None:
    key = csrs.key().read_bytes()
    error = rejected(key)
    assert error.code == "CHIAVE_PRIVATA_RICEVUTA"
    body = key.decode().splitlines()[1]
    assert body not in error.message


@pytest.mark.parametrize("encrypted", [False, True])
def test_der_private_key_is_refused(csrs: CsrFactory, encrypted: bool) -> None:
    key = serialization.load_pem_private_key(csrs.key().read_bytes(), None)
    encryption = (
        serialization.BestAvailableEncryption(b"pw") if encrypted else serialization.NoEncryption()
    )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, encryption
    )
    assert rejected(der).code == "CHIAVE_PRIVATA_RICEVUTA"


def test_certificate_instead_of_csr(csrs: CsrFactory, tmp_path: Path) -> None:
    key = csrs.key()
    pem = subprocess.run(
        ["openssl", "req", "-x509", "-key", str(key), "-subj", "/CN=RSSMRA80A01H501U",
         "-days", "1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    assert rejected(pem).code == "NON_E_UNA_CSR"
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert rejected(der).code == "NON_E_UNA_CSR"


def test_tampered_signature(csrs: CsrFactory) -> None:
    der = bytearray(csrs.csr(der=True))
    der[-1] ^= 0x01  # last byte of the signature
    assert rejected(bytes(der)).code == "CSR_FIRMA_NON_VALIDA"


def test_tampered_subject_breaks_proof_of_possession(csrs: CsrFactory) -> None:
    der = csrs.csr("/CN=RSSMRA80A01H501U", der=True)
    forged = der.replace(b"RSSMRA80A01H501U", b"BNCLRD70B02F205H")
    assert rejected(forged).code == "CSR_FIRMA_NON_VALIDA"


def test_sha1_signature_is_refused(csrs: CsrFactory) -> None:
    assert rejected(csrs.csr(digest="-sha1")).code == "CSR_HASH_DEBOLE"


def test_sha512_is_accepted(csrs: CsrFactory) -> None:
    assert inspect_request(csrs.csr(digest="-sha512")).codice_fiscale.value == "RSSMRA80A01H501U"


def test_small_rsa_key(csrs: CsrFactory) -> None:
    assert rejected(csrs.csr(bits=1024)).code == "CHIAVE_DIMENSIONE_NON_AMMESSA"


def test_large_rsa_key(csrs: CsrFactory) -> None:
    assert rejected(csrs.csr(bits=4160)).code == "CHIAVE_DIMENSIONE_NON_AMMESSA"


def test_rsa_4096_is_accepted(csrs: CsrFactory) -> None:
    assert inspect_request(csrs.csr(bits=4096)).key_description == "RSA 4096"


def test_exponent_3(csrs: CsrFactory, tmp_path: Path) -> None:
    key = tmp_path / "e3.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-pkeyopt", "rsa_keygen_pubexp:3", "-out", str(key)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert rejected(csrs.csr(key=key)).code == "CHIAVE_ESPONENTE_NON_AMMESSO"


def test_ecdsa_refused_by_default_and_allowed_by_switch(csrs: CsrFactory) -> None:
    data = csrs.csr(key=csrs.key(algorithm="ec"))
    assert rejected(data).code == "CHIAVE_TIPO_NON_AMMESSO"
    assert inspect_request(data, allow_ec=True).key_description == "ECDSA secp256r1"


def test_ed25519_refused(csrs: CsrFactory) -> None:
    key = csrs.key(algorithm="ED25519")
    data = subprocess.run(
        ["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=RSSMRA80A01H501U"],
        check=True,
        capture_output=True,
    ).stdout
    assert rejected(data).code == "CHIAVE_TIPO_NON_AMMESSO"


def test_missing_common_name(csrs: CsrFactory) -> None:
    assert rejected(csrs.csr("/O=Esempio")).code == "CN_MANCANTE"


def test_two_common_names(csrs: CsrFactory) -> None:
    assert rejected(csrs.csr("/CN=RSSMRA80A01H501U/CN=00743110157")).code == "CN_MULTIPLO"


@pytest.mark.parametrize("cn", ["RSSMRA80A01H501X", "00743110158", "www.example.it"])
def test_invalid_codice_fiscale(csrs: CsrFactory, cn: str) -> None:
    assert rejected(csrs.csr(f"/CN={cn}")).code == "CODICE_FISCALE_NON_VALIDO"


# -- the codice fiscale in the Common Name is ASCII ---------------------------------------
@pytest.fixture(scope="module")
def cn_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _csr_for(key: rsa.RSAPrivateKey, cn: str) -> bytes:
    """A CSR whose CN is exactly ``cn`` (a UTF8String: openssl's -subj mangles non-ASCII)."""
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


@pytest.mark.parametrize(
    ("cn", "expected"),
    [
        ("rssmra80a01h501u", "RSSMRA80A01H501U"),
        (" RSSMRA80A01H501U ", "RSSMRA80A01H501U"),
        ("RSS-MRA-80A01-H501U", "RSSMRA80A01H501U"),
        ("007 4311 0157", "00743110157"),
    ],
)
def test_ascii_case_spaces_and_dashes_in_the_cn_are_normalised(
    cn_key: rsa.RSAPrivateKey, cn: str, expected: str
) -> None:
    assert inspect_request(_csr_for(cn_key, cn)).codice_fiscale.value == expected


@pytest.mark.parametrize(
    "cn",
    [
        "R\u017fSMRA80A01H501U",  # ſ LONG S, upper() gives 'S'
        "R\u00dfMRA80A01H501U",  # ß, upper() gives 'SS'
        "RSSMR\u013180A01H501C",  # ı dotless i, upper() gives 'I'
        "RSSMRA\uff18\uff10A01H501U",  # full-width digits
        "\uff10\uff10743110157",  # full-width digits, company
        "\u2028RSSMRA80A01H501U",  # LINE SEPARATOR, removed by strip()
        "RSSMRA\u00a080A01H501U",  # NO-BREAK SPACE
        "RSSMRA\u201380A01H501U",  # EN DASH
        "\tRSSMRA80A01H501U",  # ASCII whitespace other than the space
        "\u212aSSMRA80A01H501U",  # KELVIN SIGN
    ],
)
def test_cn_valid_only_through_unicode_folding_is_refused(
    cn_key: rsa.RSAPrivateKey, cn: str
) -> None:
    error = rejected(_csr_for(cn_key, cn))
    assert error.code == "CODICE_FISCALE_NON_VALIDO"
    assert error.message.startswith("Il Common Name (CN) contiene ")
    assert ascii(cn) in error.message  # shown escaped, never as the look-alike itself
