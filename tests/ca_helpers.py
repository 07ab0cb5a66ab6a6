"""A throw-away test PKI built with cryptography: root CA -> issuing CA -> leaves.

The profiles mirror what certdesk issues (contract, section 7) so that linting and
``openssl verify`` see realistic certificates: leaves are CA:FALSE, digitalSignature,
clientAuth, with key identifiers and a CRL distribution point. Also a delegated OCSP
responder (id-kp-OCSPSigning, id-pkix-ocsp-nocheck), and pkilint/openssl runners shared by
the tests.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["rsa", "ec"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CRL_URL = "http://pki.certdesk.test/ca/issuing.crl"
# The running interpreter's scripts folder: the suite runs from any virtual environment.
VENV_BIN = Path(sys.executable).parent

# Pinned a little in the past so that every artefact is already valid when openssl checks it.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def new_key(key_type: KeyType) -> SigningKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certdesk test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ski(key: SigningKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _serial() -> int:
    # Positive, 127 bits of randomness (contract: at least 64).
    return secrets.randbits(127) | (1 << 126)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signer_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class TestPki:
    """Root and issuing CA, plus helpers to issue leaves and a delegated OCSP responder."""

    __test__ = False  # not a pytest test class despite the name

    key_type: KeyType
    root_key: SigningKey
    root_cert: x509.Certificate
    issuing_key: SigningKey
    issuing_cert: x509.Certificate
    leaves: list[x509.Certificate] = field(default_factory=list)

    def issue_leaf(self, cn: str = "RSSMRA80A01H501U") -> x509.Certificate:
        key = new_key("rsa")
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.issuing_cert.subject)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_signer_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(_ski(key), critical=False)
            .add_extension(_aki(self.issuing_cert), critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(CRL_URL)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
            .sign(self.issuing_key, hashes.SHA256())
        )
        self.leaves.append(cert)
        return cert

    def issue_ocsp_responder(
        self, *, eku: bool = True, issuer: Literal["issuing", "root"] = "issuing"
    ) -> tuple[x509.Certificate, SigningKey]:
        """A delegated responder; ``eku=False``/``issuer="root"`` make deliberately bad ones."""
        key = new_key(self.key_type)
        issuer_cert, issuer_key = (
            (self.issuing_cert, self.issuing_key)
            if issuer == "issuing"
            else (self.root_cert, self.root_key)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("certdesk test OCSP responder"))
            .issuer_name(issuer_cert.subject)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_signer_usage(), critical=True)
            # RFC 6960 4.2.2.2.1: clients need not check the responder's own revocation.
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .add_extension(_ski(key), critical=False)
            .add_extension(_aki(issuer_cert), critical=False)
        )
        if eku:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256()), key

    def write(self, directory: Path) -> dict[str, Path]:
        """root.pem, issuing.pem and chain.pem (issuing + root), as in outbox/ca/."""
        paths = {
            "root": directory / "root.pem",
            "issuing": directory / "issuing.pem",
            "chain": directory / "chain.pem",
        }
        paths["root"].write_bytes(pem(self.root_cert))
        paths["issuing"].write_bytes(pem(self.issuing_cert))
        paths["chain"].write_bytes(pem(self.issuing_cert) + pem(self.root_cert))
        return paths


def make_pki(key_type: KeyType = "rsa") -> TestPki:
    root_key = new_key(key_type)
    root_name = _name("certdesk test root CA")
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(_serial())
        .not_valid_before(NOW - timedelta(days=2))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(_ski(root_key), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    issuing_key = new_key(key_type)
    issuing_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("certdesk test issuing CA"))
        .issuer_name(root_name)
        .public_key(issuing_key.public_key())
        .serial_number(_serial())
        .not_valid_before(NOW - timedelta(days=2))
        .not_valid_after(NOW + timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(_ski(issuing_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(root_key)),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return TestPki(key_type, root_key, root_cert, issuing_key, issuing_cert)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a tool and capture its text; the caller decides what a failure is."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )


def pkilint_findings(tool: str, *args: str | Path) -> list[dict[str, object]]:
    """Run a pkilint ``lint_*`` tool; return the findings at WARNING or above.

    pkilint's exit code is the number of findings at or above the ``-s`` threshold (capped
    at 255), and JSON output lists them: both are checked, so neither a crash nor a finding
    can pass unnoticed.
    """
    proc = run(VENV_BIN / tool, "lint", *args, "-s", "WARNING", "-f", "JSON")
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"{tool} did not produce JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        ) from exc
    findings: list[dict[str, object]] = [
        {"node": result.get("node_path"), **finding}
        for result in report.get("results", [])
        for finding in result.get("finding_descriptions", [])
    ]
    if proc.returncode != 0 and not findings:
        raise AssertionError(f"{tool} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return findings
