"""``certdesk serve`` answered by real clients: ``openssl ocsp -url`` (it POSTs) says good,
revoked with its reason, unauthorized, and verifies every answer against the chain the
service publishes; RFC 5019 GETs made with curl are judged by ``openssl ocsp -respin``;
curl fetches the CRL and the CA certificates with their content types and caching headers.

One home for the module: three people with a certificate each, person 1's cancelled as
stolen (keyCompromise); one service on the port its certificates name.
"""

from __future__ import annotations

import base64
import email.utils
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from serve_support import (
    Served,
    cancel,
    free_port,
    http_request,
    ocsp_request,
    ocsp_status,
    openssl_ocsp_url,
    publish_on,
    request_certificates,
)

from certdesk.authority import CertificateAuthority
from certdesk.config import load_config
from certdesk.home import Home
from certdesk.revocation import OcspStatus, build_ocsp_response
from conftest import PASSPHRASE


@dataclass(frozen=True)
class Published:
    home: Path
    served: Served
    good: Path  # person 0's certificate
    revoked: Path  # person 1's, cancelled as FURTO_CERTIFICATO
    spare: Path  # person 2's, for tests that take its response away for a moment
    issuer: Path  # the issuing CA as the service gives it (DER)
    chain: Path  # chain.pem as the service gives it

    def serial(self, cert: Path) -> int:
        return x509.load_pem_x509_certificate(cert.read_bytes()).serial_number

    def response_file(self, cert: Path) -> Path:
        return self.home / "outbox" / "ocsp" / f"{self.serial(cert):x}.der"


def _curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          check=True, timeout=30)  # fmt: skip


@pytest.fixture(scope="module")
def published(ca_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    home = tmp_path_factory.mktemp("serve-ocsp") / "home"
    shutil.copytree(ca_template, home)
    port = free_port()
    publish_on(home, port)
    receipts = request_certificates(home, range(3))
    assert all(r["esito"] == "OK" for r in receipts.values()), receipts
    cancel(home, 1, receipts[1]["id_operazione"], "FURTO_CERTIFICATO")
    certs = {n: home / "outbox" / "certs" / r["certificato"] for n, r in receipts.items()}
    with Served(home, port) as served:
        downloads = home.parent
        _curl("-o", str(downloads / "issuing.cer"), served.url("/ca/issuing.cer"))
        _curl("-o", str(downloads / "chain.pem"), served.url("/ca/chain.pem"))
        yield Published(home, served, certs[0], certs[1], certs[2],
                        downloads / "issuing.cer", downloads / "chain.pem")  # fmt: skip


# -- openssl ocsp -url (POST) --------------------------------------------------------------
def test_openssl_says_good_and_verifies_against_the_published_chain(published: Published) -> None:
    done = openssl_ocsp_url(published.served, published.issuer, published.chain,
                            "-cert", str(published.good))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{published.good}: good" in done.stdout
    assert "Response verify OK" in done.stderr


def test_openssl_says_revoked_with_the_reason(published: Published) -> None:
    done = openssl_ocsp_url(published.served, published.issuer, published.chain,
                            "-cert", str(published.revoked))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{published.revoked}: revoked" in done.stdout
    assert "Reason: keyCompromise" in done.stdout and "Revocation Time:" in done.stdout
    assert "Response verify OK" in done.stderr


def test_a_nonce_is_ignored_and_the_answer_still_verifies(published: Published) -> None:
    done = openssl_ocsp_url(published.served, published.issuer, published.chain,
                            "-cert", str(published.good), nonce=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "WARNING: no nonce in response" in done.stderr
    assert f"{published.good}: good" in done.stdout and "Response verify OK" in done.stderr


@pytest.mark.parametrize(
    ("issuer", "select"),
    [("issuing", ("-serial", "0x1234")), ("root", ("-cert", "good"))],
    ids=["a serial this CA did not issue", "another issuer"],
)
def test_openssl_is_told_unauthorized(
    published: Published, issuer: str, select: tuple[str, str]
) -> None:
    issuer_file = published.issuer if issuer == "issuing" else published.home / "outbox/ca/root.pem"
    what = str(published.good) if select[1] == "good" else select[1]
    done = openssl_ocsp_url(published.served, issuer_file, published.chain, select[0], what)
    assert "Responder Error: unauthorized (6)" in done.stdout + done.stderr


def test_a_request_for_several_certificates_is_malformed(published: Published) -> None:
    """RFC 5019 2.1.1: one Request per OCSPRequest; this responder answers others
    malformedRequest (docs/contract.md)."""
    both = ("-cert", str(published.good), "-cert", str(published.revoked))
    done = openssl_ocsp_url(published.served, published.issuer, published.chain, *both)
    assert "Responder Error: malformedrequest (1)" in done.stdout + done.stderr


def test_a_sha256_cert_id_is_matched_and_answered_with_the_presigned_response(
    published: Published,
) -> None:
    """The issuer is checked with the request's own hash; the answer is the pre-signed
    response (SHA-1 CertID, RFC 5019), signed and unchanged."""
    der = ocsp_request(published.issuer, "-cert", str(published.good), hash_option="-sha256")
    reply = http_request(published.served.port, "POST", "/ocsp", der,
                         Content_Type="application/ocsp-request")  # fmt: skip
    assert reply.status == 200 and ocsp_status(reply.body) == "GOOD"
    assert reply.body == published.response_file(published.good).read_bytes()
    other = ocsp_request(published.home / "outbox/ca/root.pem", "-cert", str(published.good),
                         hash_option="-sha512")  # fmt: skip
    reply = http_request(published.served.port, "POST", "/ocsp", other,
                         Content_Type="application/ocsp-request")  # fmt: skip
    assert ocsp_status(reply.body) == "UNAUTHORIZED"


# -- RFC 5019 GET, with curl -----------------------------------------------------------------
def _get_url(published: Published, cert: Path, *, encode: bool = True) -> str:
    b64 = base64.b64encode(ocsp_request(published.issuer, "-cert", str(cert))).decode()
    return published.served.url("/ocsp/" + (quote(b64, safe="") if encode else b64))


def _headers(raw: bytes) -> dict[str, str]:
    lines = raw.decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines) if v}


@pytest.mark.parametrize("cert", ["good", "revoked"])
def test_an_rfc5019_get_by_curl_is_judged_by_openssl_respin(
    published: Published, cert: str, tmp_path: Path
) -> None:
    target = published.good if cert == "good" else published.revoked
    body, head = tmp_path / "resp.der", tmp_path / "head.txt"
    _curl("-D", str(head), "-o", str(body), _get_url(published, target))
    judged = subprocess.run(
        ["openssl", "ocsp", "-respin", str(body), "-issuer", str(published.issuer),
         "-cert", str(target), "-CAfile", str(published.chain)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert judged.returncode == 0, judged.stderr
    assert f"{target}: {cert}" in judged.stdout and "Response verify OK" in judged.stderr
    headers = _headers(head.read_bytes())
    response = ocsp.load_der_ocsp_response(body.read_bytes())
    assert headers["content-type"] == "application/ocsp-response"
    assert email.utils.parsedate_to_datetime(headers["last-modified"]) == response.this_update_utc
    assert email.utils.parsedate_to_datetime(headers["expires"]) == response.next_update_utc
    directives = [d.strip() for d in headers["cache-control"].split(",")]
    assert directives[1:] == ["public", "no-transform", "must-revalidate"]
    max_age = int(directives[0].removeprefix("max-age="))
    date = email.utils.parsedate_to_datetime(headers["date"])
    assert abs(max_age - (response.next_update_utc - date).total_seconds()) <= 5
    assert headers["etag"].startswith('"')


def test_a_get_whose_base64_is_not_url_encoded_is_answered_too(published: Published) -> None:
    url = _get_url(published, published.good, encode=False)
    done = _curl("-o", "-", url)
    assert ocsp_status(done.stdout) == "GOOD"


def test_if_none_match_gets_304_without_a_body(published: Published, tmp_path: Path) -> None:
    url = _get_url(published, published.good)
    head = tmp_path / "head.txt"
    _curl("-D", str(head), "-o", os.devnull, url)
    etag = _headers(head.read_bytes())["etag"]
    done = _curl("-D", "-", "-o", os.devnull, "-H", f"If-None-Match: {etag}", url)
    head_304 = done.stdout.decode("latin-1")
    assert head_304.startswith("HTTP/1.1 304")
    assert f"ETag: {etag}" in head_304 and "Cache-Control: max-age=" in head_304
    again = _curl("-D", "-", "-o", os.devnull, "-H", 'If-None-Match: "other"', url)
    assert again.stdout.startswith(b"HTTP/1.1 200")


# -- the CRL and the CA certificates, with curl ---------------------------------------------
@pytest.mark.parametrize(
    ("path", "content_type", "outbox_file"),
    [("/ca/issuing.crl", "application/pkix-crl", "ca/issuing.crl"),
     ("/ca/issuing.cer", "application/pkix-cert", "ca/issuing.pem"),
     ("/ca/root.cer", "application/pkix-cert", "ca/root.pem"),
     ("/ca/chain.pem", "application/pem-certificate-chain", "ca/chain.pem")],
)  # fmt: skip
def test_curl_gets_the_crl_and_the_ca_certificates(
    published: Published, path: str, content_type: str, outbox_file: str, tmp_path: Path
) -> None:
    body = tmp_path / "body"
    done = _curl("-D", "-", "-o", str(body), published.served.url(path))
    headers = _headers(done.stdout)
    assert headers["content-type"] == content_type
    assert "public" in headers["cache-control"] and "max-age=" in headers["cache-control"]
    assert headers["etag"]
    published_bytes = (published.home / "outbox" / outbox_file).read_bytes()
    if outbox_file.endswith("root.pem") or outbox_file.endswith("issuing.pem"):
        published_bytes = x509.load_pem_x509_certificate(published_bytes).public_bytes(
            Encoding.DER
        )
    assert body.read_bytes() == published_bytes
    if path.endswith(".crl"):
        crl = x509.load_der_x509_crl(body.read_bytes())
        entry = crl.get_revoked_certificate_by_serial_number(published.serial(published.revoked))
        assert entry is not None
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name == (
            "key_compromise"
        )
        assert email.utils.parsedate_to_datetime(headers["last-modified"]) == crl.last_update_utc
        good = published.serial(published.good)
        assert crl.get_revoked_certificate_by_serial_number(good) is None


def test_the_certificates_name_the_service_s_urls(published: Published) -> None:
    cert = x509.load_pem_x509_certificate(published.good.read_bytes())
    base = published.served.url("")
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name[0].value for p in points] == [f"{base}/ca/issuing.crl"]
    access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(a.access_method._name, a.access_location.value) for a in access] == [
        ("OCSP", f"{base}/ocsp"), ("caIssuers", f"{base}/ca/issuing.cer")
    ]  # fmt: skip


# -- not signed yet, stale, health -------------------------------------------------------------
def _post(published: Published, cert: Path) -> str:
    der = ocsp_request(published.issuer, "-cert", str(cert))
    reply = http_request(published.served.port, "POST", "/ocsp", der,
                         Content_Type="application/ocsp-request")  # fmt: skip
    assert reply.status == 200
    return ocsp_status(reply.body)


def test_health_says_fresh(published: Published) -> None:
    reply = http_request(published.served.port, "GET", "/health")
    assert reply.status == 200, reply.body
    assert b'"status": "fresh"' in reply.body and reply.headers["Cache-Control"] == "no-store"


def test_an_issued_certificate_without_its_first_response_is_try_later(
    published: Published,
) -> None:
    """The daemon signs a new certificate's first response just after its receipt: a
    request meanwhile is tryLater (the ledger lists it), never unauthorized."""
    response = published.response_file(published.spare)
    aside = response.with_name(".aside")
    response.rename(aside)
    try:
        assert _post(published, published.spare) == "TRY_LATER"
    finally:
        aside.rename(response)
    assert _post(published, published.spare) == "GOOD"


def test_a_response_past_its_next_update_is_never_served(published: Published) -> None:
    """A daemon that stopped refreshing: the responder says tryLater, health says stale."""
    home = Home.at(published.home)
    ca = CertificateAuthority.load(home, load_config(home.root), PASSPHRASE.encode())
    cert = x509.load_pem_x509_certificate(published.spare.read_bytes())
    now = datetime.now(UTC)
    stale = build_ocsp_response(
        issuer_cert=ca.issuing_cert, issuer_key=ca.issuing_key, cert=cert,
        status=OcspStatus.GOOD, revoked_at=None, reason=None,
        this_update=now - timedelta(days=8), next_update=now - timedelta(seconds=1),
    )  # fmt: skip
    response = published.response_file(published.spare)
    original = response.read_bytes()
    written = response.with_name(".stale.tmp")
    written.write_bytes(stale)
    written.replace(response)
    try:
        assert _post(published, published.spare) == "TRY_LATER"
        reply = http_request(published.served.port, "GET", "/health")
        assert reply.status == 503 and b'"status": "stale"' in reply.body
    finally:
        written.write_bytes(original)
        written.replace(response)
    assert _post(published, published.spare) == "GOOD"
