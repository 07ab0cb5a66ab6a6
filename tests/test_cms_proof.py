"""A signed annullamento (.p7m) opened and verified by certdesk.cms_proof.

The material is real: keys and certificates (issued by a throw-away CA) made with
cryptography, signatures made by the ``openssl cms`` command line as users will make them.
Cases openssl will not write (two content-type attributes, PSS with default parameters...)
are openssl's files changed with asn1crypto.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ca_helpers import NOW, SigningKey, TestPki, make_pki, new_key, pem, run
from certdesk.cms_proof import (
    MAX_CMS_BYTES,
    CmsRefused,
    SignedMessage,
    SignerId,
    looks_like_cms,
    open_signed,
)
from certdesk.cms_text import unarmored
from certdesk.policy import MAX_INPUT_BYTES

DOCUMENT = json.dumps(
    {"tipo": "annullamento", "codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO",
     "nota": "chiave smarrita, è così"},
    ensure_ascii=False,
).encode()  # fmt: skip
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
CONTENT_TYPE = "1.2.840.113549.1.9.3"


@dataclass
class Signer:
    key: SigningKey
    cert: x509.Certificate
    key_path: Path
    cert_path: Path


@dataclass
class Material:
    pki: TestPki
    rsa: Signer
    ec: Signer
    folder: Path
    document: Path
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def sign(self, *options: str, signer: str = "rsa", attached: bool = True) -> bytes:
        """``openssl cms -sign -binary -outform DER`` of DOCUMENT, as a user would."""
        who = self.rsa if signer == "rsa" else self.ec
        out = self.folder / f"signed-{next(self.numbers)}.p7m"
        proc = run(
            "openssl", "cms", "-sign", *(["-nodetach"] if attached else []), "-binary",
            "-outform", "DER", "-signer", who.cert_path, "-inkey", who.key_path,
            "-in", self.document, "-out", out, *options,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return out.read_bytes()


def _leaf(
    pki: TestPki, key: SigningKey, cn: str, serial: int | None = None, *, ski: bool = True
) -> x509.Certificate:
    """A certificate for ``key`` issued by the test CA (``serial`` to make a twin)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(pki.issuing_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    return builder.sign(pki.issuing_key, hashes.SHA256())


def _signer(pki: TestPki, folder: Path, kind: str) -> Signer:
    key = new_key("rsa" if kind == "rsa" else "ec")
    cert = _leaf(pki, key, f"RSSMRA80A01H501U {kind}")
    key_path, cert_path = folder / f"{kind}-key.pem", folder / f"{kind}-cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(pem(cert))
    return Signer(key, cert, key_path, cert_path)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    folder = tmp_path_factory.mktemp("cms")
    pki = make_pki("ec")
    document = folder / "annullamento.json"
    document.write_bytes(DOCUMENT)
    signed = folder / "signed"
    signed.mkdir()
    return Material(pki, _signer(pki, folder, "rsa"), _signer(pki, folder, "ec"), signed, document)


@pytest.fixture(scope="module")
def p7m(material: Material) -> bytes:
    """The plain case: RSA, SHA-256, signed attributes, the signer's certificate inside."""
    return material.sign()


def _refused(data: bytes) -> str:
    with pytest.raises(CmsRefused) as caught:
        open_signed(data)
    return caught.value.case


def _refused_by(message: SignedMessage, certificate: x509.Certificate) -> str:
    with pytest.raises(CmsRefused) as caught:
        message.verify_with(certificate)
    return caught.value.case


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _changed(data: bytes, change: Callable[[cms.SignerInfo], None]) -> bytes:
    """openssl's file with its SignerInfo changed by asn1crypto (signature left as it was)."""
    info = cms.ContentInfo.load(data)
    change(info["content"]["signer_infos"][0])
    return bytes(info.dump())


# -- openssl's signatures are opened and verified ----------------------------------------

VARIANTS = {
    "rsa": ((), "rsa"),
    "rsa-sha512": (("-md", "sha512"), "rsa"),
    "rsa-sha384": (("-md", "sha384"), "rsa"),
    "rsa-pss": (("-keyopt", "rsa_padding_mode:pss"), "rsa"),
    "rsa-pss-sha512": (("-md", "sha512", "-keyopt", "rsa_padding_mode:pss"), "rsa"),
    "ec": ((), "ec"),
    "ec-sha384": (("-md", "sha384"), "ec"),
    "nocerts": (("-nocerts",), "rsa"),
    "noattr": (("-noattr",), "rsa"),
    "keyid": (("-keyid",), "rsa"),
    "ec-keyid-nocerts": (("-keyid", "-nocerts"), "ec"),
    "stream-ber": (("-stream",), "rsa"),  # indefinite lengths, the content in chunks
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_openssl_signatures_open_and_verify(material: Material, variant: str) -> None:
    options, kind = VARIANTS[variant]
    signer = material.rsa if kind == "rsa" else material.ec
    data = material.sign(*options, signer=kind)
    assert looks_like_cms(data)
    message = open_signed(data)
    assert message.content == DOCUMENT
    assert message.signer.matches(signer.cert)
    assert message.certificates == (() if "-nocerts" in options else (signer.cert,))
    message.verify_with(signer.cert)


def test_the_signer_is_named_by_issuer_and_serial_or_by_key_identifier(
    material: Material, p7m: bytes
) -> None:
    cert = material.rsa.cert
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert open_signed(p7m).signer == SignerId(cert.issuer.public_bytes(), cert.serial_number, None)
    assert open_signed(material.sign("-keyid")).signer == SignerId(None, None, ski)


def test_an_issuer_name_encoded_otherwise_still_matches(material: Material) -> None:
    """RFC 5280 name matching: a PrintableString for cryptography's UTF8String, other case."""
    cert = material.rsa.cert
    subject = material.pki.issuing_cert.subject

    def value(oid: x509.ObjectIdentifier) -> str:
        return str(subject.get_attributes_for_oid(oid)[0].value)

    names = {"country_name": value(NameOID.COUNTRY_NAME), "common_name": value(NameOID.COMMON_NAME),
             "organization_name": value(NameOID.ORGANIZATION_NAME).upper()}  # fmt: skip
    reencoded = asn1_x509.Name.build(names, use_printable=True).dump()
    assert reencoded != cert.issuer.public_bytes()
    assert SignerId(reencoded, cert.serial_number, None).matches(cert)
    assert not SignerId(reencoded, cert.serial_number + 1, None).matches(cert)


# -- the wrong certificate, a changed file -----------------------------------------------


def test_another_certificate_is_not_the_signer(material: Material, p7m: bytes) -> None:
    assert _refused_by(open_signed(p7m), material.ec.cert) == "firmatario"
    keyid = open_signed(material.sign("-keyid"))
    assert _refused_by(keyid, material.ec.cert) == "firmatario"
    same_key_no_ski = _leaf(material.pki, material.rsa.key, "senza SKI", ski=False)
    assert _refused_by(keyid, same_key_no_ski) == "firmatario"


def test_a_twin_certificate_with_another_key_does_not_verify(
    material: Material, p7m: bytes
) -> None:
    """Same issuer and serial (the SignerId matches), another key: the signature decides."""
    cert = material.rsa.cert
    twin = _leaf(material.pki, new_key("rsa"), "gemello", serial=cert.serial_number)
    message = open_signed(p7m)
    assert message.signer.matches(twin)
    assert _refused_by(message, twin) == "firma"
    # an ECDSA signature and an RSA key with the signer's name: the key does not fit
    ec_message = open_signed(material.sign(signer="ec"))
    rsa_twin = _leaf(material.pki, material.rsa.key, "gemello", material.ec.cert.serial_number)
    assert _refused_by(ec_message, rsa_twin) == "firma"


def test_a_changed_content_breaks_the_digest_or_the_signature(
    material: Material, p7m: bytes
) -> None:
    at = p7m.index(DOCUMENT) + 10
    assert _refused(_flip(p7m, at)) == "impronta"
    no_attributes = material.sign("-noattr")  # the signature covers the content itself
    changed = open_signed(_flip(no_attributes, no_attributes.index(DOCUMENT) + 10))
    assert _refused_by(changed, material.rsa.cert) == "firma"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_changed_signature_does_not_verify(material: Material, kind: str) -> None:
    data = material.sign(signer=kind)
    signature = cms.ContentInfo.load(data)["content"]["signer_infos"][0]["signature"].native
    changed = open_signed(_flip(data, data.index(signature) + len(signature) // 2))
    assert _refused_by(changed, (material.rsa if kind == "rsa" else material.ec).cert) == "firma"


def test_a_changed_signed_attribute_does_not_verify(material: Material, p7m: bytes) -> None:
    def later(signer: cms.SignerInfo) -> None:
        for attribute in signer["signed_attrs"]:
            if attribute["type"].native == "signing_time":
                attribute["values"] = [cms.Time({"utc_time": NOW + timedelta(days=1)})]

    assert _refused_by(open_signed(_changed(p7m, later)), material.rsa.cert) == "firma"


def test_signed_attributes_are_verified_as_received(material: Material, p7m: bytes) -> None:
    """Not re-sorted into DER's order: OpenSSL too verifies the SET as it was sent."""
    info = cms.ContentInfo.load(p7m)
    signer = info["content"]["signer_infos"][0]
    attributes = [a.dump() for a in signer["signed_attrs"]]
    reversed_set = core.Asn1Value(class_=2, method=1, tag=0, contents=b"".join(attributes[::-1]))
    as_set = b"\x31" + reversed_set.dump()[1:]
    assert isinstance(material.rsa.key, rsa.RSAPrivateKey)
    signer["signature"] = material.rsa.key.sign(as_set, padding.PKCS1v15(), hashes.SHA256())
    before, after = signer["signed_attrs"].dump(), reversed_set.dump()
    data = info.dump().replace(before, after)
    assert data != info.dump()
    open_signed(data).verify_with(material.rsa.cert)


# -- refusals: what is not a signed, attached, id-data document --------------------------


def test_a_detached_signature_is_refused(material: Material) -> None:
    assert _refused(material.sign(attached=False)) == "staccato"


def test_a_certificates_only_pkcs7_is_not_signed(material: Material) -> None:
    out = material.folder / "certs.p7b"
    proc = run("openssl", "crl2pkcs7", "-nocrl", "-certfile", material.rsa.cert_path,
               "-outform", "DER", "-out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert looks_like_cms(data)
    assert _refused(data) == "non_firmato"


def test_a_content_info_that_is_not_signed_data() -> None:
    data_only = cms.ContentInfo({"content_type": "data", "content": DOCUMENT}).dump()
    assert _refused(data_only) == "non_firmato"
    assert not looks_like_cms(data_only)


def test_zero_or_two_signers_are_refused(p7m: bytes) -> None:
    info = cms.ContentInfo.load(p7m)
    signers = info["content"]["signer_infos"]
    one = signers[0]
    info["content"]["signer_infos"] = [one, one.copy()]
    assert _refused(info.dump()) == "firmatari"
    info["content"]["signer_infos"] = []
    assert _refused(info.dump()) == "firmatari"


def test_a_content_that_is_not_id_data(material: Material, p7m: bytes) -> None:
    assert _refused(material.sign("-econtent_type", "1.2.3.4")) == "contenuto"

    def content_type(oid: str | None) -> Callable[[cms.SignerInfo], None]:
        def change(signer: cms.SignerInfo) -> None:
            attributes = [a for a in signer["signed_attrs"] if a["type"].dotted != CONTENT_TYPE]
            if oid:
                attributes.append(cms.CMSAttribute({"type": "content_type", "values": [oid]}))
            signer["signed_attrs"] = attributes

        return change

    assert _refused(_changed(p7m, content_type("1.2.3.4"))) == "contenuto"
    assert _refused(_changed(p7m, content_type(None))) == "contenuto"


def test_weak_digests_are_refused(material: Material) -> None:
    assert _refused(material.sign("-md", "sha1")) == "algoritmo"
    assert _refused(material.sign("-md", "sha1", signer="ec")) == "algoritmo"
    assert _refused(material.sign("-md", "md5")) == "algoritmo"  # openssl: not with EC


def test_parameters_where_null_is_due_are_not_der(p7m: bytes) -> None:
    """asn1crypto's schema holds SHA-2 and PKCS#1 v1.5 parameters to NULL or absent."""
    info = cms.ContentInfo.load(p7m)
    algorithm = info["content"]["signer_infos"][0]["signature_algorithm"].dump()
    assert algorithm.endswith(b"\x05\x00")  # rsaEncryption, NULL
    with_octets = algorithm[:-2] + b"\x04\x00"  # an empty OCTET STRING, the same length
    assert _refused(p7m.replace(algorithm, with_octets)) == "non_der"


def _algorithm(**fields: object) -> Callable[[cms.SignerInfo], None]:
    def change(signer: cms.SignerInfo) -> None:
        for name, value in fields.items():
            signer[name] = value

    return change


# SHA-1 and MGF1 with SHA-1
PSS_DEFAULTS = {"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams.load(b"\x30\x00")}
PSS_SHA384 = {"algorithm": "rsassa_pss", "parameters": {
    "hash_algorithm": {"algorithm": "sha384"},
    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha384"}},
    "salt_length": 48}}  # fmt: skip
REFUSED_ALGORITHMS = {
    "md5 digest": _algorithm(digest_algorithm={"algorithm": "md5"}),
    "sha3 digest": _algorithm(digest_algorithm={"algorithm": "sha3_256"}),
    "ecdsa parameters": _algorithm(
        signature_algorithm={"algorithm": "sha256_ecdsa", "parameters": core.Integer(1)}
    ),
    "sha1 with rsa": _algorithm(signature_algorithm={"algorithm": "sha1_rsa"}),
    "sha384 rsa, sha256 digest": _algorithm(signature_algorithm={"algorithm": "sha384_rsa"}),
    "ecdsa sha512, sha256 digest": _algorithm(signature_algorithm={"algorithm": "sha512_ecdsa"}),
    "dsa": _algorithm(signature_algorithm={"algorithm": "sha256_dsa"}),
    "ed25519": _algorithm(signature_algorithm={"algorithm": "ed25519"}),
    "pss defaults (sha1)": _algorithm(signature_algorithm=PSS_DEFAULTS),
    "pss without parameters": _algorithm(signature_algorithm={"algorithm": "rsassa_pss"}),
    "pss sha384, sha256 digest": _algorithm(signature_algorithm=PSS_SHA384),
}


@pytest.mark.parametrize("case", REFUSED_ALGORITHMS)
def test_algorithms_outside_the_list_are_refused(p7m: bytes, case: str) -> None:
    assert _refused(_changed(p7m, REFUSED_ALGORITHMS[case])) == "algoritmo"


def test_rsa_with_sha256_named_in_the_signature_algorithm_is_accepted(
    material: Material, p7m: bytes
) -> None:
    """sha256WithRSAEncryption instead of rsaEncryption: the same PKCS#1 v1.5 signature."""
    named = _changed(p7m, _algorithm(signature_algorithm={"algorithm": "sha256_rsa"}))
    open_signed(named).verify_with(material.rsa.cert)


def test_message_digest_absent_or_repeated(p7m: bytes) -> None:
    def digests(count: int) -> Callable[[cms.SignerInfo], None]:
        def change(signer: cms.SignerInfo) -> None:
            attributes = list(signer["signed_attrs"])
            found = next(a for a in attributes if a["type"].dotted == MESSAGE_DIGEST)
            kept = [a for a in attributes if a is not found]
            signer["signed_attrs"] = kept + [found.copy() for _ in range(count)]

        return change

    assert _refused(_changed(p7m, digests(0))) == "impronta"
    assert _refused(_changed(p7m, digests(2))) == "impronta"


# -- any bytes: a CmsRefused, never another exception ------------------------------------


def test_what_is_not_a_cms_is_non_der(material: Material, p7m: bytes) -> None:
    cases = [b"", b"\x00", b"0", DOCUMENT, pem(material.rsa.cert), p7m + b"\x00",
             material.rsa.cert.public_bytes(serialization.Encoding.DER)]  # fmt: skip
    for data in cases:
        assert _refused(data) == "non_der", data[:20]
        assert not looks_like_cms(data) or data == p7m + b"\x00"


def test_every_truncation_is_non_der(p7m: bytes) -> None:
    for length in range(len(p7m)):
        assert _refused(p7m[:length]) == "non_der", length


def test_random_bytes_are_non_der() -> None:
    rng = random.Random(5652)
    prefix = bytes.fromhex("308006092a864886f70d010702a080")  # a signedData, BER
    for _ in range(1500):
        data = rng.randbytes(rng.randrange(0, 300))
        assert _refused(data) == "non_der"
        assert _refused(prefix + data) == "non_der"


def test_bit_flips_never_raise_anything_else_nor_change_a_verified_content(
    material: Material,
) -> None:
    """Every byte of two real files flipped once: refused, or the same content verified."""
    for data, cert in ((material.sign(), material.rsa.cert),
                       (material.sign("-stream", signer="ec"), material.ec.cert)):  # fmt: skip
        for at in range(len(data)):
            try:
                message = open_signed(_flip(data, at))
                message.verify_with(cert)
            except CmsRefused:
                continue
            assert message.content == DOCUMENT, at


def test_random_damage_never_raises_anything_else(p7m: bytes) -> None:
    rng = random.Random(2025)
    for _ in range(600):
        data = bytearray(p7m)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = rng.choice([len(data), rng.randrange(len(data))])
        try:
            open_signed(bytes(data[:cut]))
        except CmsRefused as refused:
            assert refused.case in {"non_der", "non_firmato", "staccato", "firmatari",
                                    "contenuto", "algoritmo", "impronta"}  # fmt: skip


def _tlv(tag: bytes, body: bytes) -> bytes:
    """DER: the shortest length form."""
    size = len(body)
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return tag + (bytes([size]) if size < 0x80 else bytes([0x80 | len(octets)]) + octets) + body


def test_deep_nesting_and_huge_lengths_are_non_der() -> None:
    nested = b"\x05\x00"
    for _ in range(15_000):
        nested = _tlv(b"\x30", nested)
    assert len(nested) < MAX_CMS_BYTES - 100
    signed_data = bytes.fromhex("06092a864886f70d010702")
    cases = [
        nested,
        _tlv(b"\x30", signed_data + _tlv(b"\xa0", nested)),
        b"\x30\x80" * 30_000,  # indefinite lengths nested past asn1crypto's limit of 10
        b"\x30\x84\xff\xff\xff\xff" + signed_data,
        b"\x30\x89" + b"\xff" * 9 + signed_data,
        b"\x30\x8f" + b"\x01" * 15,
        _tlv(b"\x30", signed_data + b"\xa0\x84\x7f\xff\xff\xff\x30\x00"),
        _tlv(b"\x30", signed_data + _tlv(b"\xa0", b"\x1f" + b"\xff" * 2000 + b"\x01\x00")),
    ]
    for data in cases:
        assert _refused(data) == "non_der", data[:16].hex()


def test_the_slowest_shapes_are_bounded_by_the_size_limit() -> None:
    """asn1crypto reads one OID arc (or tag number) in time quadratic in its length: what
    MAX_CMS_BYTES keeps to a second. Past it, the bytes are not parsed at all."""
    arc = b"\xff" * (MAX_CMS_BYTES - 20) + b"\x01"
    data = _tlv(b"\x30", _tlv(b"\x06", arc) + b"\xa0\x02\x05\x00")
    assert len(data) <= MAX_CMS_BYTES
    start = time.perf_counter()
    assert _refused(data) == "non_der"
    assert time.perf_counter() - start < 30  # about 1 s; minutes past 1 MiB
    assert _refused(b"\x30" * (MAX_CMS_BYTES + 1)) == "non_der"


def test_the_callers_input_limit_fits_within_the_parsers() -> None:
    """A .p7m the daemon accepts for its size is never refused here for its size."""
    assert MAX_INPUT_BYTES <= MAX_CMS_BYTES


# -- a .p7m as text: base64, bare or PEM (cms_text) --------------------------------------


def _as_text(material: Material, p7m: bytes, tool: str) -> bytes:
    """openssl's own PEM of the .p7m: ``cms -cmsout`` (CMS) or ``pkcs7`` (PKCS7)."""
    der_file = material.folder / f"as-{tool}.p7m"
    der_file.write_bytes(p7m)
    command = ["cms", "-cmsout"] if tool == "cms" else ["pkcs7"]
    done = run("openssl", *command, "-inform", "DER", "-in", der_file, "-outform", "PEM")
    assert done.returncode == 0, done.stderr
    return done.stdout.encode()


def test_a_p7m_as_base64_text_opens_as_its_der(material: Material, p7m: bytes) -> None:
    cms_pem, pkcs7_pem = _as_text(material, p7m, "cms"), _as_text(material, p7m, "pkcs7")
    assert cms_pem.startswith(b"-----BEGIN CMS-----")
    assert pkcs7_pem.startswith(b"-----BEGIN PKCS7-----")
    body = b"".join(cms_pem.splitlines()[1:-1])
    one_line = base64.b64encode(p7m)
    forms = {
        "cms": cms_pem, "pkcs7": pkcs7_pem, "crlf": cms_pem.replace(b"\n", b"\r\n"),
        "bom": b"\xef\xbb\xbf" + cms_pem, "spaced": b"\n\n  " + cms_pem + b"\n \t\n",
        "label PKCS #7": b"-----BEGIN PKCS #7 SIGNED DATA-----\n" + body
        + b"\n-----END PKCS #7 SIGNED DATA-----\n",
        "bare": body, "one line": one_line, "76 columns": base64.encodebytes(p7m),
        "bare crlf": b"\r\n".join(one_line[i : i + 64] for i in range(0, len(one_line), 64)),
        "stream-ber": base64.b64encode(material.sign("-stream")),
    }  # fmt: skip
    for name, text in forms.items():
        assert looks_like_cms(text), name
        message = open_signed(text)
        assert message.content == DOCUMENT, name
        message.verify_with(material.rsa.cert)


def test_text_that_is_not_a_p7m_is_non_der(material: Material, p7m: bytes) -> None:
    cms_pem = _as_text(material, p7m, "cms")
    body = b"".join(cms_pem.splitlines()[1:-1])
    one_line = base64.b64encode(p7m)
    cases = {
        "a certificate": pem(material.rsa.cert),
        "another label": cms_pem.replace(b"CMS-----", b"X509 CRL-----"),
        "ends otherwise": cms_pem.replace(b"END CMS", b"END PKCS7"),
        "no end": cms_pem.split(b"-----END")[0],
        "two blocks": cms_pem + cms_pem,
        "text after": cms_pem + b"firmato da me\n",
        "text before": b"allegato:\n" + cms_pem,
        "a header line": cms_pem.replace(b"-----\n", b"-----\nProc-Type: 4,ENCRYPTED\n", 1),
        "only the begin line": b"-----BEGIN CMS-----\n",
        "base64 of the document": base64.b64encode(DOCUMENT),
        "a character short": one_line[:-1],  # its padding, or its data: never whole
        "a character outside": one_line[:40] + b"*" + one_line[40:],
        "url-safe alphabet": base64.urlsafe_b64encode(p7m),
        "latin-1": body[:30] + "è".encode("latin-1") + body[30:],
        "whitespace": b" \n" * 1000,
    }  # fmt: skip
    for name, text in cases.items():
        if name == "url-safe alphabet" and text == one_line:
            continue  # this signature happened to have neither + nor /
        assert _refused(text) == "non_der", name
        assert not looks_like_cms(text), name
        assert unarmored(text) == text, name
    # cut anywhere: refused; cut at a whole group of four, the base64 of a truncated .p7m,
    # which the sniff takes for one, as it takes a truncated DER file
    for cut in range(0, len(one_line), 7):
        assert _refused(one_line[:cut]) == "non_der", cut
        assert _refused(cms_pem[:cut]) == "non_der", cut
        if cut % 4 == 0 and cut >= 24:
            assert unarmored(one_line[:cut]) == p7m[: cut // 4 * 3], cut


def test_damaged_text_never_raises_anything_else(material: Material, p7m: bytes) -> None:
    text = _as_text(material, p7m, "cms")
    rng = random.Random(4648)
    for _ in range(400):
        data = bytearray(text)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.choice(b"AZaz09+/=- \n\r*\x00\xff")
        try:
            message = open_signed(bytes(data))
            message.verify_with(material.rsa.cert)
        except CmsRefused:
            continue
        assert message.content == DOCUMENT  # only a change base64 ignores


def test_text_of_any_shape_is_read_in_linear_time() -> None:
    """Only character classes and slices: no shape of text makes the reading backtrack.
    (A bound loose enough for a shared machine: a quadratic reading takes minutes here.)"""
    size = MAX_INPUT_BYTES
    shapes = [b" " * size, b"-----BEGIN CMS-----\n" + b" \n" * (size // 2),
              b"-----BEGIN CMS-----" * (size // 19), b"A" * size, b"A\n" * (size // 2),
              b"-----BEGIN CMS-----\n" + b"=" * size + b"\n-----END CMS-----"]  # fmt: skip
    start = time.perf_counter()
    for data in shapes:
        assert _refused(data) == "non_der"
    assert time.perf_counter() - start < 10


# -- the sniff ---------------------------------------------------------------------------


def test_looks_like_cms_tells_a_p7m_from_the_rest(material: Material, p7m: bytes) -> None:
    for data in (p7m, material.sign("-stream"), material.sign(signer="ec")):
        assert looks_like_cms(data)
    not_cms = [b"", b"\x30", b"\x30\x80", DOCUMENT, b"\xef\xbb\xbf" + DOCUMENT,
               pem(material.rsa.cert), random.Random(1).randbytes(200),
               material.rsa.cert.public_bytes(serialization.Encoding.DER)]  # fmt: skip
    for data in not_cms:
        assert not looks_like_cms(data), data[:20]


def test_refusals_carry_their_case_and_facts(material: Material) -> None:
    with pytest.raises(CmsRefused) as caught:
        open_signed(material.sign("-md", "sha1"))
    assert caught.value.case == "algoritmo"
    assert caught.value.facts == {"digest": algos.DigestAlgorithmId("sha1").dotted}
    assert "algoritmo" in str(caught.value)
