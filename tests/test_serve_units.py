"""The publication service's parts, without a server: the URLs certificates name
(``publication``, ``[publish]`` in ``config``, the leaf profile), OCSP on the wire
(``serving.ocsp_wire``), the ledger's serial index (``serving.serials``) and the
responder's decisions (``serving.responder``) on an outbox made here."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca_helpers import TestPki, make_pki
from certdesk.authority import CertificateAuthority
from certdesk.config import load_config, public_urls
from certdesk.errors import CertdeskError
from certdesk.home import Home
from certdesk.outbox import Outbox
from certdesk.publication import PublicUrls, is_local_url, parse_listen, valid_public_url
from certdesk.records import LEDGER_COLUMNS
from certdesk.revocation import OcspStatus, build_ocsp_response
from certdesk.serving import ocsp_wire, serials
from certdesk.serving.issuers import IssuerDirectory
from certdesk.serving.responder import Responder
from certdesk.serving.serials import SerialIndex
from conftest import PASSPHRASE


# -- URLs --------------------------------------------------------------------------------------
def test_every_url_derives_from_public_url_and_crl_or_ocsp_url_win() -> None:
    default = PublicUrls.derive(listen="127.0.0.1:8080", public_url="", crl_url="", ocsp_url="")
    assert default.in_certificates() == (
        "http://127.0.0.1:8080/ca/issuing.crl", "http://127.0.0.1:8080/ocsp",
        "http://127.0.0.1:8080/ca/issuing.cer",
    )  # fmt: skip
    assert default.local() == list(default.in_certificates())
    under = PublicUrls.derive(listen="0.0.0.0:80", public_url="https://pki.example.it/certdesk/",
                              crl_url="", ocsp_url="")  # fmt: skip
    assert under.crl == "https://pki.example.it/certdesk/ca/issuing.crl"
    assert under.ocsp == "https://pki.example.it/certdesk/ocsp"
    assert under.path(under.ocsp) == "/certdesk/ocsp" and under.local() == []
    written = PublicUrls.derive(listen="127.0.0.1:8080", public_url="https://pki.example.it",
                                crl_url="http://cdn.example.it/x.crl",
                                ocsp_url="http://ocsp.example.it/")  # fmt: skip
    assert (written.crl, written.ocsp) == ("http://cdn.example.it/x.crl", "http://ocsp.example.it/")
    assert written.ca_issuers == "https://pki.example.it/ca/issuing.cer"
    assert written.path(written.ocsp) == "/"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)),
     ("pki.example.it:443", ("pki.example.it", 443)), ("0.0.0.0:1", ("0.0.0.0", 1)),
     ("localhost", None), ("127.0.0.1:0", None), ("127.0.0.1:65536", None), ("::1:80", None),
     (":8080", None), ("[::1]", None), ("a b:80", None), ("host:port", None), ("[x]:80", None)],
)  # fmt: skip
def test_listen_is_host_colon_port(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_listen(text) == parsed


def test_public_url_and_local_addresses() -> None:
    for good in ("http://127.0.0.1:8080", "https://pki.example.it/certdesk", "http://[::1]:80/"):
        assert valid_public_url(good), good
    for bad in ("ftp://x", "pki.example.it", "http://", "http://x/?q=1", "http://x/#f",
                "http://u@x/", "http://x:port/", "http://x /a"):  # fmt: skip
        assert not valid_public_url(bad), bad
    for local in ("http://127.0.0.1/", "http://localhost:8080/x", "http://[::1]/", "http://0.0.0.0/",
                  "http://a.localhost/", "http://127.9.9.9/"):  # fmt: skip
        assert is_local_url(local), local
    for remote in ("https://pki.example.it/", "http://10.0.0.1/", "http://192.0.2.7:8080/"):
        assert not is_local_url(remote), remote


def _config(home: Path, text: str) -> None:
    (home / "certdesk.toml").write_text(text)


def test_the_publish_section_and_its_refusals(tmp_path: Path) -> None:
    assert public_urls(load_config(tmp_path)).crl == "http://127.0.0.1:8080/ca/issuing.crl"
    _config(tmp_path, '[publish]\nlisten = "127.0.0.1:9000"\n')
    assert public_urls(load_config(tmp_path)).ocsp == "http://127.0.0.1:9000/ocsp"
    _config(tmp_path, '[ca]\ncrl_url = "ldap://dir.example.it/cn=crl"\n'
                      '[publish]\npublic_url = "https://pki.example.it/c"\n')  # fmt: skip
    urls = public_urls(load_config(tmp_path))
    assert urls.crl == "ldap://dir.example.it/cn=crl" and urls.ocsp == "https://pki.example.it/c/ocsp"
    for bad in ('listen = "8080"', 'public_url = "pki.example.it"', "listen = 8080",
                'port = "1"'):  # fmt: skip
        _config(tmp_path, f"[publish]\n{bad}\n")
        with pytest.raises(CertdeskError) as refused:
            load_config(tmp_path)
        assert refused.value.code == "CONFIGURAZIONE_NON_VALIDA", bad


def _leaf(root: Path, toml: str) -> x509.Certificate:
    _config(root, toml)
    home = Home.at(root)
    ca = CertificateAuthority.load(home, load_config(home.root), PASSPHRASE.encode())
    key = make_pki().issuing_key.public_key()
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
    return x509.load_der_x509_certificate(ca.issue("RSSMRA80A01H501U", spki, datetime.now(UTC)).der)


def _urls(cert: x509.Certificate) -> list[str]:
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return [points[0].full_name[0].value, *(a.access_location.value for a in access)]


def test_the_leaf_names_the_derived_urls_and_written_ones_win(
    ca_template: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(ca_template, home)
    keys = '[ca]\nroot_key = "rsa2048"\nissuing_key = "rsa2048"\n'
    derived = _leaf(home, keys + '[publish]\npublic_url = "https://pki.example.it/certdesk"\n')
    base = "https://pki.example.it/certdesk"
    assert _urls(derived) == [f"{base}/ca/issuing.crl", f"{base}/ocsp", f"{base}/ca/issuing.cer"]
    access = derived.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert not access.critical
    aia = x509.oid.AuthorityInformationAccessOID
    assert [a.access_method for a in access.value] == [aia.OCSP, aia.CA_ISSUERS]
    written = _leaf(home, keys + 'crl_url = "http://cdn.example.it/a.crl"\n'
                    'ocsp_url = "http://ocsp.example.it"\n')  # fmt: skip
    assert _urls(written) == ["http://cdn.example.it/a.crl", "http://ocsp.example.it",
                              "http://127.0.0.1:8080/ca/issuing.cer"]  # fmt: skip


# -- OCSP on the wire --------------------------------------------------------------------------
def test_the_unsigned_answers_are_those_cryptography_builds() -> None:
    status = ocsp.OCSPResponseStatus
    for constant, expected in ((ocsp_wire.MALFORMED_REQUEST, status.MALFORMED_REQUEST),
                               (ocsp_wire.INTERNAL_ERROR, status.INTERNAL_ERROR),
                               (ocsp_wire.TRY_LATER, status.TRY_LATER),
                               (ocsp_wire.UNAUTHORIZED, status.UNAUTHORIZED)):  # fmt: skip
        built = ocsp.OCSPResponseBuilder.build_unsuccessful(expected)
        assert constant == built.public_bytes(serialization.Encoding.DER)


def _request(leaf: x509.Certificate, issuer: x509.Certificate, algorithm: object) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm)  # type: ignore[arg-type]
    return builder.build().public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_the_issuer_is_matched_with_the_request_s_own_hash(key_type: str) -> None:
    pki = make_pki(key_type)  # type: ignore[arg-type]
    other = make_pki("rsa")
    leaf = pki.issue_leaf()
    keys = ocsp_wire.IssuerKeys(pki.issuing_cert)
    for algorithm in (hashes.SHA1(), hashes.SHA224(), hashes.SHA256(), hashes.SHA384(),
                      hashes.SHA512()):  # fmt: skip
        cert_id = ocsp_wire.read_request(_request(leaf, pki.issuing_cert, algorithm))
        assert cert_id is not None and cert_id.serial == leaf.serial_number
        assert keys.issued(cert_id), algorithm.name
        assert not ocsp_wire.IssuerKeys(other.issuing_cert).issued(cert_id)
        assert not ocsp_wire.IssuerKeys(pki.root_cert).issued(cert_id)
    unknown = ocsp_wire.CertId("", b"x", b"y", 1)
    assert not keys.issued(unknown)


def test_requests_that_are_not_one_request_are_malformed() -> None:
    pki = make_pki()
    leaf = pki.issue_leaf()
    one = _request(leaf, pki.issuing_cert, hashes.SHA1())
    for bad in (b"", b"\x30\x00", one[:-1], b"garbage", one + b"\x00"):
        assert ocsp_wire.read_request(bad) is None
    assert ocsp_wire.read_request(one) is not None


def test_the_get_path_is_url_encoded_base64_of_at_most_255_bytes() -> None:
    der = bytes(range(100))
    text = base64.b64encode(der).decode()
    assert ocsp_wire.decode_get_path(text) == der
    assert ocsp_wire.decode_get_path(quote(text, safe="")) == der
    assert ocsp_wire.decode_get_path(text.rstrip("=")) == der  # padding forgiven
    assert ocsp_wire.decode_get_path("not*base64") is None
    assert ocsp_wire.decode_get_path("A" * 256) is None


# -- the ledger's serials ----------------------------------------------------------------------
def _row(n: int, serial: str, scadenza: str, origine: str = "x.csr") -> str:
    fields = [f"20261201-{n:09d}", "RSSMRA80A01H501U", "PERSONA_FISICA", f"{n}.pem", "ATTIVATO",
              "2026-12-01T00:00:00Z", scadenza, "OK", serial, "ab" * 32, "", "", origine]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def _write(path: Path, text: str, mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8", newline="") as fh:
        fh.write(text)


def test_the_index_reads_appended_rows_and_a_replaced_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serials, "_MERGE_AT", 3)
    ledger = tmp_path / "ledger.csv"
    index = SerialIndex(ledger)
    index.refresh()  # no ledger yet
    assert len(index) == 0 and not index.changed()
    header = ",".join(LEDGER_COLUMNS) + "\n"
    big = (1 << 158) | 0xABCDEF
    _write(ledger, header + _row(1, f"{big:x}", "2029-01-01T00:00:00Z")
           + _row(2, "", "") + _row(3, "7f", "", 'strano, "nome".csv'))  # fmt: skip
    assert index.changed()
    index.refresh()
    assert index.end_of(big) == int(datetime(2029, 1, 1, tzinfo=UTC).timestamp())
    assert index.end_of(0x7F) is not None and index.end_of(0x80) is None and len(index) == 2
    assert not index.changed()
    torn = _row(4, "99", "2030-01-01T00:00:00Z")
    _write(ledger, torn[:20], "a")  # a row being appended: read once it is whole
    index.refresh()
    assert index.end_of(0x99) is None
    _write(ledger, torn[20:] + _row(5, "aa", "2030-01-01T00:00:00Z"), "a")
    index.refresh()
    assert index.end_of(0x99) and index.end_of(0xAA) and len(index) == 4  # merged
    replaced = tmp_path / ".ledger.tmp"
    _write(replaced, header + _row(1, f"{big:x}", "2029-01-01T00:00:00Z") + _row(6, "bb", ""))
    os.replace(replaced, ledger)
    assert index.changed()
    index.refresh()
    assert index.end_of(0xBB) is not None and index.end_of(0x99) is None


# -- the responder's decisions -----------------------------------------------------------------
class _Outbox:
    def __init__(self, root: Path, pki: TestPki) -> None:
        self.outbox = Outbox(root)
        for folder in self.outbox.folders:
            folder.mkdir(parents=True, exist_ok=True)
        pki.write(self.outbox.ca)
        self.pki = pki
        self.stale: list[int] = []
        self.now = datetime.now(UTC)
        self.responder = Responder(
            self.outbox, IssuerDirectory(self.outbox),
            SerialIndex(self.outbox.ledger), lambda: self.now, self.stale.append,
        )  # fmt: skip

    def sign(self, leaf: x509.Certificate, next_update: datetime) -> None:
        der = build_ocsp_response(
            issuer_cert=self.pki.issuing_cert, issuer_key=self.pki.issuing_key, cert=leaf,
            status=OcspStatus.GOOD, revoked_at=None, reason=None,
            this_update=next_update - timedelta(days=7), next_update=next_update,
        )  # fmt: skip
        Path(self.outbox.ocsp_response_fspath(leaf.serial_number)).write_bytes(der)

    def list(self, leaf: x509.Certificate, scadenza: datetime) -> None:
        text = _row(leaf.serial_number % 1000, f"{leaf.serial_number:x}",
                    scadenza.strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
        header = "" if self.outbox.ledger.exists() else ",".join(LEDGER_COLUMNS) + "\n"
        _write(self.outbox.ledger, header + text, "a")

    def ask(self, leaf: x509.Certificate, issuer: x509.Certificate | None = None) -> str:
        der = _request(leaf, issuer or self.pki.issuing_cert, hashes.SHA1())
        return asyncio.run(self.responder.answer(der)).outcome


def test_the_responder_decides_from_the_outbox_alone(tmp_path: Path) -> None:
    box = _Outbox(tmp_path / "outbox", make_pki())
    now = box.now
    fresh, unsigned, stale, expired, foreign = (box.pki.issue_leaf() for _ in range(5))
    box.sign(fresh, now + timedelta(days=3))
    box.sign(stale, now - timedelta(seconds=1))
    box.sign(expired, now - timedelta(seconds=1))
    for leaf in (fresh, unsigned, stale):
        box.list(leaf, now + timedelta(days=300))
    box.list(expired, now - timedelta(days=1))
    assert box.ask(fresh) == "good"
    assert box.ask(unsigned) == "tryLater"  # listed, first response not signed yet
    assert box.ask(foreign) == "unauthorized"  # never listed
    assert box.ask(fresh, box.pki.root_cert) == "unauthorized"  # another issuer
    assert box.ask(stale) == "tryLater" and box.stale == [stale.serial_number]
    assert box.ask(expired) == "unauthorized"  # its last response went stale: no status
    box.list(foreign, now + timedelta(days=300))  # issued since: the ledger grew
    assert box.ask(foreign) == "tryLater"
    Path(box.outbox.ocsp_response_fspath(fresh.serial_number)).write_bytes(b"not a response")
    assert box.ask(fresh) == "internalError"
    box.outbox.issuing_certificate.unlink()  # no CA published yet
    assert box.ask(fresh) == "tryLater"
