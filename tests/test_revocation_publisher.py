"""Publishing revocation status (``revocation_publisher.py``): after an annullamento, the CRL
and the pre-signed OCSP responses in ``outbox/``, judged by openssl and pkilint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cryptography import x509

from ca_helpers import pkilint_findings
from conftest import (
    COMPANY,
    OTHER,
    PERSON,
    CsrFactory,
    cancel,
    cert_path,
    crl,
    drop,
    openssl_verify_crl,
    process,
    serial,
)


def test_openssl_and_pkilint_on_the_crl(home: Path, issued: dict[str, str]) -> None:
    assert cancel(home, PERSON, motivazione="CHIAVE_SMARRITA")["esito"] == "OK"
    revoked = openssl_verify_crl(home, issued["p0"])
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    live = openssl_verify_crl(home, issued["c"])
    assert live.returncode == 0 and ": OK" in live.stdout, live.stderr
    assert pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX",
                            home / "outbox" / "ca" / "issuing.crl") == []  # fmt: skip
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(home / "outbox/ca/issuing.crl"),
         "-noout", "-text"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Key Compromise" in text and "X509v3 CRL Number" in text


def test_crl_number_is_monotonic(home: Path, issued: dict[str, str]) -> None:
    def number() -> int:
        return crl(home).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    first = number()
    cancel(home, COMPANY, motivazione="ATTIVITA_CESSATA")
    second = number()
    cancel(home, OTHER, motivazione="MALFUNZIONAMENTO")
    assert first < second < number()


def _ocsp(home: Path, id_op: str) -> subprocess.CompletedProcess[str]:
    ca = home / "outbox" / "ca"
    response = home / "outbox" / "ocsp" / f"{serial(home, id_op):x}.der"
    return subprocess.run(
        ["openssl", "ocsp", "-respin", str(response), "-issuer", str(ca / "issuing.pem"),
         "-VAfile", str(ca / "issuing.pem"), "-CAfile", str(ca / "chain.pem"),
         "-cert", str(cert_path(home, id_op)), "-resp_text"],
        capture_output=True, text=True,
    )  # fmt: skip


def test_ocsp_responses_good_and_revoked(home: Path, issued: dict[str, str]) -> None:
    assert cancel(home, PERSON, motivazione="CHIAVE_SMARRITA")["esito"] == "OK"
    revoked = _ocsp(home, issued["p0"])
    assert "Response verify OK" in revoked.stderr + revoked.stdout, revoked.stderr
    assert "revoked" in revoked.stdout and "Reason: keyCompromise" in revoked.stdout
    good = _ocsp(home, issued["c"])
    assert "Response verify OK" in good.stderr + good.stdout
    assert ": good" in good.stdout
    path = home / "outbox" / "ocsp" / f"{serial(home, issued['p0']):x}.der"
    assert pkilint_findings("lint_ocsp_response", path) == []


def test_ocsp_of_a_cancellation_is_signed_before_its_receipt(
    home: Path, csrs: CsrFactory, issued: dict[str, str]
) -> None:
    """The revoked OCSP response exists before the receipt appears, even while new
    certificates are still waiting for their first response."""
    for index in range(3):
        drop(home, f"a{index}.csr", csrs.csr(f"/CN={COMPANY}"))
    drop(home, "z-annullamento.json", json.dumps({
        "tipo": "annullamento", "codice_fiscale": OTHER, "id_operazione": [issued["o"]],
        "motivazione": "CHIAVE_SMARRITA", "operatore": "test",
    }).encode())  # fmt: skip
    process(home)
    answer = home / "outbox" / "receipts" / "z-annullamento.json.json"
    assert json.loads(answer.read_text())["esito"] == "OK"
    response = home / "outbox" / "ocsp" / f"{serial(home, issued['o']):x}.der"
    assert response.stat().st_mtime_ns <= answer.stat().st_mtime_ns
    assert (
        ": revoked" in _ocsp(home, issued["o"]).stdout
        or "revoked" in _ocsp(home, issued["o"]).stdout
    )
