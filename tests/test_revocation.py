"""certdesk.revocation: CRLs and pre-signed OCSP responses, checked by outside tools.

cryptography reads the artefacts back, but the real judges are the ones relying parties
use: ``openssl crl``/``openssl verify -crl_check``/``openssl ocsp`` and pkilint. Every
pkilint run fails the test on any finding at WARNING or above.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import ocsp

from ca_helpers import NOW, KeyType, TestPki, make_pki, pem, pkilint_findings, run
from certdesk.errors import CaError
from certdesk.revocation import (
    OcspStatus,
    RevokedEntry,
    build_crl,
    build_ocsp_response,
    crl_to_pem,
    ocsp_file_name,
    sign_crl,
)

THIS_UPDATE = NOW
NEXT_UPDATE = NOW + timedelta(hours=24)
KC = x509.ReasonFlags.key_compromise


@pytest.fixture(scope="module", params=["rsa", "ec"])
def pki(request: pytest.FixtureRequest) -> Iterator[TestPki]:
    key_type: KeyType = request.param
    yield make_pki(key_type)


@pytest.fixture(scope="module")
def rsa_pki() -> TestPki:
    return make_pki("rsa")


def _crl(pki: TestPki, entries: list[RevokedEntry], crl_number: int = 1) -> bytes:
    return build_crl(
        issuer_cert=pki.issuing_cert,
        issuer_key=pki.issuing_key,
        entries=entries,
        crl_number=crl_number,
        this_update=THIS_UPDATE,
        next_update=NEXT_UPDATE,
    )


def _ocsp(
    pki: TestPki,
    cert: x509.Certificate,
    status: OcspStatus = OcspStatus.GOOD,
    revoked_at: datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    **kwargs: object,
) -> bytes:
    return build_ocsp_response(
        issuer_cert=pki.issuing_cert,
        issuer_key=pki.issuing_key,
        cert=cert,
        status=status,
        revoked_at=revoked_at,
        reason=reason,
        this_update=THIS_UPDATE,
        next_update=NEXT_UPDATE,
        **kwargs,  # type: ignore[arg-type]
    )


def _assert_lint_clean(tool: str, *args: str | Path) -> None:
    findings = pkilint_findings(tool, *args)
    assert findings == [], f"{tool} findings: {findings}"


# --- CRL -----------------------------------------------------------------------------


def test_crl_profile(pki: TestPki) -> None:
    revoked = pki.issue_leaf()
    entries = [
        RevokedEntry(revoked.serial_number, NOW - timedelta(hours=1), KC),
        RevokedEntry(0x1234, NOW - timedelta(hours=2), x509.ReasonFlags.superseded),
        RevokedEntry(0x5678, NOW - timedelta(hours=3), None),  # ALTRO: no reasonCode
    ]
    crl = x509.load_der_x509_crl(_crl(pki, entries, crl_number=42))

    assert crl.is_signature_valid(pki.issuing_key.public_key())
    assert crl.issuer == pki.issuing_cert.subject
    assert isinstance(crl.signature_hash_algorithm, hashes.SHA256)
    assert crl.last_update_utc == THIS_UPDATE
    assert crl.next_update_utc == NEXT_UPDATE
    # tbsCertList.version is v2 (INTEGER 1): cryptography does not expose it, openssl does.
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = pki.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert not aki.critical
    assert aki.value.key_identifier == ski.value.digest

    assert [r.serial_number for r in crl] == [e.serial for e in entries]  # order kept
    for entry in entries:
        got = crl.get_revoked_certificate_by_serial_number(entry.serial)
        assert got is not None
        assert got.revocation_date_utc == entry.revoked_at
        if entry.reason is None:
            assert len(got.extensions) == 0  # omitted, not "unspecified"
        else:
            ext = got.extensions.get_extension_for_class(x509.CRLReason)
            assert ext.value.reason == entry.reason
            assert not ext.critical


def test_crl_lints_clean_and_openssl_parses_it(pki: TestPki, tmp_path: Path) -> None:
    leaf = pki.issue_leaf()
    entries = [
        RevokedEntry(leaf.serial_number, NOW, KC),
        RevokedEntry(0xABC, NOW, x509.ReasonFlags.cessation_of_operation),
        RevokedEntry(0xDEF, NOW, x509.ReasonFlags.superseded),
        RevokedEntry(0x123, NOW, None),
    ]
    der = tmp_path / "issuing.crl"
    der.write_bytes(_crl(pki, entries, crl_number=7))

    _assert_lint_clean("lint_crl", "-t", "CRL", "-p", "PKIX", der)

    proc = run("openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-text")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Version 2 (0x1)" in text
    assert "sha256With" in text or "ecdsa-with-SHA256" in text
    assert "X509v3 Authority Key Identifier" in text
    assert "X509v3 CRL Number" in text
    assert f"Serial Number: {leaf.serial_number:X}" in text
    assert text.count("X509v3 CRL Reason Code") == 3
    assert "Key Compromise" in text
    assert "Cessation Of Operation" in text
    assert "Superseded" in text


def test_empty_crl_lints_clean(pki: TestPki, tmp_path: Path) -> None:
    # A new CA publishes a CRL before any cancellation: revokedCertificates must be absent,
    # not an empty SEQUENCE (pkix.crl_revoked_certificates_empty).
    der = tmp_path / "empty.crl"
    der.write_bytes(_crl(pki, []))
    _assert_lint_clean("lint_crl", "-t", "CRL", "-p", "PKIX", der)
    assert len(x509.load_der_x509_crl(der.read_bytes())) == 0


def test_lint_gate_catches_findings(rsa_pki: TestPki, tmp_path: Path) -> None:
    # The lint assertions above would be worthless if a bad CRL also came back clean:
    # a CRL without CRLNumber and AKI must produce findings.
    bad = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(rsa_pki.issuing_cert.subject)
        .last_update(THIS_UPDATE)
        .next_update(NEXT_UPDATE)
        .sign(rsa_pki.issuing_key, hashes.SHA256())
    )
    path = tmp_path / "bad.crl"
    path.write_bytes(bad.public_bytes(serialization.Encoding.DER))
    codes = {f["code"] for f in pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX", path)}
    assert {"pkix.crl_number_missing", "pkix.authority_key_identifier_missing"} <= codes
    with pytest.raises(AssertionError, match="lint_crl findings"):
        _assert_lint_clean("lint_crl", "-t", "CRL", "-p", "PKIX", path)


def test_openssl_verify_crl_check(pki: TestPki, tmp_path: Path) -> None:
    revoked, live = pki.issue_leaf("RSSMRA80A01H501U"), pki.issue_leaf("12345678903")
    paths = pki.write(tmp_path)
    (tmp_path / "revoked.pem").write_bytes(pem(revoked))
    (tmp_path / "live.pem").write_bytes(pem(live))
    crl_pem = tmp_path / "issuing.crl.pem"
    crl_pem.write_bytes(crl_to_pem(_crl(pki, [RevokedEntry(revoked.serial_number, NOW, KC)])))

    def verify(leaf: str) -> str:
        proc = run(
            "openssl", "verify", "-crl_check", "-CAfile", paths["chain"],
            "-CRLfile", crl_pem, tmp_path / leaf,
        )  # fmt: skip
        output = proc.stdout + proc.stderr
        assert (proc.returncode == 0) == output.strip().endswith(": OK"), output
        return output

    assert "certificate revoked" in verify("revoked.pem")
    assert verify("live.pem").strip() == f"{tmp_path / 'live.pem'}: OK"


def test_large_crl_is_complete(rsa_pki: TestPki, tmp_path: Path) -> None:
    reasons = [None, KC, x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation]
    n = 20_000
    entries = [
        RevokedEntry((i << 64) | 0xC0FFEE, NOW - timedelta(minutes=i), reasons[i % 4])
        for i in range(1, n + 1)
    ]
    der = _crl(rsa_pki, entries, crl_number=n)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(rsa_pki.issuing_key.public_key())
    assert len(crl) == n
    for got, want in zip(crl, entries, strict=True):
        assert got.serial_number == want.serial
        assert got.revocation_date_utc == want.revoked_at
        reason = (
            got.extensions.get_extension_for_class(x509.CRLReason).value.reason
            if len(got.extensions)
            else None
        )
        assert reason == want.reason

    path = tmp_path / "big.crl"
    path.write_bytes(der)
    proc = run("openssl", "crl", "-inform", "DER", "-in", path, "-noout", "-text")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Serial Number:") == n
    assert proc.stdout.count("X509v3 CRL Reason Code") == n - n // 4


def test_crl_accepts_generator_and_non_utc_times(rsa_pki: TestPki) -> None:
    rome_summer = timezone(timedelta(hours=2))
    local = datetime(2026, 7, 1, 12, 0, tzinfo=rome_summer)
    der = build_crl(
        issuer_cert=rsa_pki.issuing_cert,
        issuer_key=rsa_pki.issuing_key,
        entries=(RevokedEntry(s, local, None) for s in (1, 2, 3)),
        crl_number=0,
        this_update=local,
        next_update=local + timedelta(days=1),
    )
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 3
    assert crl.last_update_utc == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert next(iter(crl)).revocation_date_utc == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def test_crl_to_pem(rsa_pki: TestPki, tmp_path: Path) -> None:
    der = _crl(rsa_pki, [RevokedEntry(9, NOW, KC)])
    pem_bytes = crl_to_pem(der)
    assert pem_bytes == x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
    assert all(len(line) <= 64 for line in pem_bytes.splitlines())
    path = tmp_path / "crl.pem"
    path.write_bytes(pem_bytes)
    back = tmp_path / "back.der"
    proc = run("openssl", "crl", "-in", path, "-outform", "DER", "-out", back)
    assert proc.returncode == 0, proc.stderr
    assert back.read_bytes() == der
    with pytest.raises(ValueError):
        crl_to_pem(b"not a crl")


def _entries_of(der: bytes) -> list[tuple[int, datetime, x509.ReasonFlags | None]]:
    listed = []
    for revoked in x509.load_der_x509_crl(der):
        try:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        listed.append((revoked.serial_number, revoked.revocation_date_utc, reason))
    return listed


def test_kept_crl_entries_give_the_same_crl(rsa_pki: TestPki) -> None:
    """The daemon keeps the entries it built (CrlEntries): a CRL re-issued for one more
    cancellation reuses them, drops the ones that left (expired) and lists exactly what a
    CRL built from scratch lists, in the same order."""
    from certdesk.revocation_publisher import CrlEntries

    def rows(*serials: int) -> list[tuple[str, str, str]]:
        motives = ["CHIAVE_SMARRITA", "ATTIVITA_CESSATA", "ALTRO"]
        return [(format(s, "x"), f"2026-11-{s:02d}T10:00:00Z", motives[s % 3]) for s in serials]

    def from_scratch(*serials: int) -> bytes:
        from certdesk.clock import parse_utc
        from certdesk.reasons import Motivazione

        return _crl(rsa_pki, [RevokedEntry(int(s, 16), parse_utc(t), Motivazione(m).crl_reason)
                              for s, t, m in rows(*serials)])  # fmt: skip

    def signed(revoked: list[x509.RevokedCertificate]) -> bytes:
        return sign_crl(issuer_cert=rsa_pki.issuing_cert, issuer_key=rsa_pki.issuing_key,
                        revoked=revoked, crl_number=1, this_update=THIS_UPDATE,
                        next_update=NEXT_UPDATE)  # fmt: skip

    kept = CrlEntries()
    first = kept.build(rows(1, 2, 3))
    assert _entries_of(signed(first)) == _entries_of(from_scratch(1, 2, 3))
    assert _entries_of(signed(first))[1][2] is None  # serial 2, ALTRO: no reason code
    second = kept.build(rows(2, 3, 4))  # 1 expired, 4 cancelled since
    assert second[0] is first[1] and second[1] is first[2]  # built once, reused
    assert _entries_of(signed(second)) == _entries_of(from_scratch(2, 3, 4))
    assert len(kept) == 3
    with pytest.raises(ValueError, match="twice"):
        kept.build(rows(5, 5))

    bounded = CrlEntries(limit=2)
    assert _entries_of(signed(bounded.build(rows(1, 2, 3)))) == _entries_of(from_scratch(1, 2, 3))
    assert len(bounded) == 0  # over the limit: nothing kept, memory stays bounded


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"serial": 0}, ValueError),
        ({"serial": -5}, ValueError),
        ({"serial": 1 << 159}, ValueError),
        ({"serial": True}, TypeError),
        ({"revoked_at": datetime(2026, 1, 1)}, ValueError),  # naive
        ({"reason": x509.ReasonFlags.unspecified}, ValueError),
        ({"reason": x509.ReasonFlags.remove_from_crl}, ValueError),
        ({"reason": "keyCompromise"}, TypeError),
    ],
)
def test_revoked_entry_rejects(kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {"serial": 1, "revoked_at": NOW, "reason": None, **kwargs}
    with pytest.raises(error):
        RevokedEntry(**args)  # type: ignore[arg-type]


def test_build_crl_rejects_bad_arguments(rsa_pki: TestPki) -> None:
    ok: dict[str, object] = {
        "issuer_cert": rsa_pki.issuing_cert,
        "issuer_key": rsa_pki.issuing_key,
        "entries": [],
        "crl_number": 1,
        "this_update": THIS_UPDATE,
        "next_update": NEXT_UPDATE,
    }

    def build(**changes: object) -> bytes:
        return build_crl(**{**ok, **changes})  # type: ignore[arg-type]

    assert build()  # the baseline is valid
    with pytest.raises(ValueError, match="twice"):
        build(entries=[RevokedEntry(7, NOW, None), RevokedEntry(7, NOW, KC)])
    with pytest.raises(ValueError, match="after"):
        build(next_update=THIS_UPDATE)
    with pytest.raises(ValueError, match="timezone"):
        build(this_update=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="crl_number"):
        build(crl_number=-1)
    with pytest.raises(ValueError, match="crl_number"):
        build(crl_number=1 << 159)
    with pytest.raises(TypeError):
        build(entries=[(1, NOW, None)])
    with pytest.raises(TypeError, match="RSA or EC"):
        build(issuer_key=ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(CaError, match="non corrisponde al suo certificato"):
        build(issuer_key=rsa_pki.root_key)  # the issuing CA's certificate, the root's key
    with pytest.raises(CaError, match="SubjectKeyIdentifier"):
        build(issuer_cert=_without_ski(rsa_pki), issuer_key=rsa_pki.issuing_key)


def _without_ski(pki: TestPki) -> x509.Certificate:
    cert = pki.issuing_cert
    return (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(pki.issuing_key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(pki.root_key, hashes.SHA256())
    )


# --- OCSP ----------------------------------------------------------------------------


def _openssl_ocsp(
    tmp_path: Path, pki: TestPki, leaf: x509.Certificate, response: bytes, *, va_file: bool
) -> str:
    """Verify a response as a relying party would; return openssl's report."""
    paths = pki.write(tmp_path)
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    (tmp_path / "resp.der").write_bytes(response)
    args: list[str | Path] = [
        "openssl", "ocsp", "-respin", tmp_path / "resp.der", "-issuer", paths["issuing"],
        "-cert", tmp_path / "leaf.pem", "-CAfile", paths["chain"], "-resp_text",
    ]  # fmt: skip
    if va_file:
        # The issuing CA signs its responses itself: trust it explicitly as the responder.
        args += ["-VAfile", paths["issuing"]]
    proc = run(*args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Response verify OK" in output, output
    return output


@pytest.mark.parametrize("va_file", [True, False], ids=["VAfile", "chain-only"])
def test_ocsp_good(pki: TestPki, tmp_path: Path, va_file: bool) -> None:
    leaf = pki.issue_leaf()
    der = _ocsp(pki, leaf)
    output = _openssl_ocsp(tmp_path, pki, leaf, der, va_file=va_file)
    assert f"{tmp_path / 'leaf.pem'}: good" in output

    resp = ocsp.load_der_ocsp_response(der)
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == leaf.serial_number
    assert isinstance(resp.hash_algorithm, hashes.SHA1)  # RFC 5019 CertID
    assert isinstance(resp.signature_hash_algorithm, hashes.SHA256)
    ski = pki.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert resp.responder_key_hash == ski.value.digest  # responderID byKey
    assert resp.responder_name is None
    assert resp.certificates == []  # the CA signs: nothing to embed
    assert resp.this_update_utc == THIS_UPDATE
    assert resp.next_update_utc == NEXT_UPDATE
    assert len(resp.extensions) == 0  # no nonce in a pre-signed response

    path = tmp_path / "good.der"
    path.write_bytes(der)
    _assert_lint_clean("lint_ocsp_response", path)


@pytest.mark.parametrize("reason", [KC, x509.ReasonFlags.superseded, None])
def test_ocsp_revoked(pki: TestPki, tmp_path: Path, reason: x509.ReasonFlags | None) -> None:
    leaf = pki.issue_leaf()
    revoked_at = NOW - timedelta(hours=1)
    der = _ocsp(pki, leaf, OcspStatus.REVOKED, revoked_at, reason)
    output = _openssl_ocsp(tmp_path, pki, leaf, der, va_file=True)
    assert f"{tmp_path / 'leaf.pem'}: revoked" in output
    if reason is None:
        assert "Reason:" not in output
    else:
        assert f"Reason: {_openssl_reason(reason)}" in output

    resp = ocsp.load_der_ocsp_response(der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_time_utc == revoked_at
    assert resp.revocation_reason == reason

    path = tmp_path / "revoked.der"
    path.write_bytes(der)
    _assert_lint_clean("lint_ocsp_response", path)


def _openssl_reason(reason: x509.ReasonFlags) -> str:
    return {KC: "keyCompromise", x509.ReasonFlags.superseded: "superseded"}[reason]


def test_ocsp_delegated_responder(pki: TestPki, tmp_path: Path) -> None:
    leaf = pki.issue_leaf()
    responder_cert, responder_key = pki.issue_ocsp_responder()
    der = _ocsp(
        pki, leaf, OcspStatus.REVOKED, NOW, KC,
        responder_cert=responder_cert, responder_key=responder_key,
    )  # fmt: skip

    # No -VAfile: openssl must accept the responder from the chain alone, i.e. because it
    # is issued by the issuing CA with id-kp-OCSPSigning (RFC 6960 4.2.2.2).
    output = _openssl_ocsp(tmp_path, pki, leaf, der, va_file=False)
    assert f"{tmp_path / 'leaf.pem'}: revoked" in output
    assert "Reason: keyCompromise" in output

    resp = ocsp.load_der_ocsp_response(der)
    assert resp.certificates == [responder_cert]
    ski = responder_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert resp.responder_key_hash == ski.value.digest
    assert isinstance(resp.hash_algorithm, hashes.SHA1)

    path = tmp_path / "delegated.der"
    path.write_bytes(der)
    _assert_lint_clean("lint_ocsp_response", path)


def test_ocsp_lint_gate_catches_findings(rsa_pki: TestPki, tmp_path: Path) -> None:
    # As for the CRL: a broken response must produce findings, or "clean" means nothing.
    # OCSPResponse starts with responseStatus ENUMERATED successful(0); 4 is unassigned in
    # RFC 6960, and the edit keeps the DER well-formed.
    der = bytearray(_ocsp(rsa_pki, rsa_pki.issue_leaf()))
    status_at = der.index(b"\x0a\x01\x00")
    der[status_at + 2] = 4
    path = tmp_path / "bad.der"
    path.write_bytes(bytes(der))
    codes = {f["code"] for f in pkilint_findings("lint_ocsp_response", path)}
    assert "pkix.ocsp_response_status_code_4" in codes
    with pytest.raises(AssertionError, match="lint_ocsp_response findings"):
        _assert_lint_clean("lint_ocsp_response", path)


def test_ocsp_rejects_bad_arguments(rsa_pki: TestPki) -> None:
    leaf = rsa_pki.issue_leaf()
    with pytest.raises(ValueError, match="revoked_at"):
        _ocsp(rsa_pki, leaf, OcspStatus.REVOKED, None, KC)
    with pytest.raises(ValueError, match="good"):
        _ocsp(rsa_pki, leaf, OcspStatus.GOOD, NOW, None)
    with pytest.raises(ValueError, match="good"):
        _ocsp(rsa_pki, leaf, OcspStatus.GOOD, None, KC)
    with pytest.raises(ValueError, match="timezone"):
        _ocsp(rsa_pki, leaf, OcspStatus.REVOKED, datetime(2026, 1, 1), KC)
    with pytest.raises(ValueError, match="not allowed"):
        _ocsp(rsa_pki, leaf, OcspStatus.REVOKED, NOW, x509.ReasonFlags.unspecified)
    with pytest.raises(ValueError, match="not issued by"):
        _ocsp(rsa_pki, rsa_pki.issuing_cert, OcspStatus.GOOD)  # issued by the root
    with pytest.raises(CaError, match="non corrisponde al suo certificato"):
        build_ocsp_response(
            issuer_cert=rsa_pki.issuing_cert, issuer_key=rsa_pki.root_key, cert=leaf,
            status=OcspStatus.GOOD, revoked_at=None, reason=None,
            this_update=THIS_UPDATE, next_update=NEXT_UPDATE,
        )  # fmt: skip

    responder_cert, responder_key = rsa_pki.issue_ocsp_responder()
    with pytest.raises(ValueError, match="together"):
        _ocsp(rsa_pki, leaf, responder_cert=responder_cert)
    with pytest.raises(ValueError, match="together"):
        _ocsp(rsa_pki, leaf, responder_key=responder_key)
    with pytest.raises(CaError, match="non corrisponde al suo certificato"):
        _ocsp(rsa_pki, leaf, responder_cert=responder_cert, responder_key=rsa_pki.issuing_key)
    no_eku_cert, no_eku_key = rsa_pki.issue_ocsp_responder(eku=False)
    with pytest.raises(CaError, match="OCSPSigning"):
        _ocsp(rsa_pki, leaf, responder_cert=no_eku_cert, responder_key=no_eku_key)
    by_root_cert, by_root_key = rsa_pki.issue_ocsp_responder(issuer="root")
    with pytest.raises(CaError, match="non è emesso dalla CA emittente"):
        _ocsp(rsa_pki, leaf, responder_cert=by_root_cert, responder_key=by_root_key)


def test_test_pki_leaves_lint_clean(rsa_pki: TestPki, tmp_path: Path) -> None:
    # The CRL and OCSP checks are only as realistic as the certificates they run against.
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pem(rsa_pki.issue_leaf()))
    _assert_lint_clean("lint_pkix_cert", leaf)
    responder = tmp_path / "responder.pem"
    responder.write_bytes(pem(rsa_pki.issue_ocsp_responder()[0]))
    _assert_lint_clean("lint_pkix_cert", responder)


# --- file names ----------------------------------------------------------------------


def test_ocsp_file_name() -> None:
    assert ocsp_file_name(0x0A1B2C) == "a1b2c.der"
    assert ocsp_file_name(1) == "1.der"
    serial = 0x4E063666081A3331D709F5AD31452D08
    assert ocsp_file_name(serial) == "4e063666081a3331d709f5ad31452d08.der"
    for bad in (0, -1):
        with pytest.raises(ValueError):
            ocsp_file_name(bad)
    with pytest.raises(TypeError):
        ocsp_file_name(True)
