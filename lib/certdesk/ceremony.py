"""The offline-root ceremony's commands (docs/hsm.md), each in the home it runs in.

- root home: ``certdesk init --root-only`` (``init_root``), later
  ``certdesk sign-issuing CSR --out FILE`` (``sign_request``);
- issuing home (the daemon's): ``certdesk init --issuing-only`` (``init_request``), then
  ``certdesk init --import-issuing FILE`` (``import_certificate``).

The root's key is used by ``init_root`` and ``sign_request`` only, in the root's home:
the issuing home never holds it, nor a way to reach it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .config import load_config
from .hierarchy import create_root, import_issuing, request_issuing, sign_issuing
from .home import Home
from .keys import provider_for, resolve_secret
from .runtime import open_init, publish_ca

__all__ = ["import_certificate", "init_request", "init_root", "sign_request"]


def _fingerprint(cert: x509.Certificate) -> str:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


def init_root(home: Home, secret_file: Path | None, keys: str | None, adopt: bool) -> str:
    config, provider, _, _ = open_init(home, secret_file, keys)
    root = create_root(home, config, provider, adopt=adopt)
    return (
        f"root CA created in {home.ca_dir} (no issuing CA here): sign an issuing CA's "
        f"request with 'certdesk sign-issuing'. Root SHA-256 fingerprint {_fingerprint(root)}"
    )


def init_request(home: Home, secret_file: Path | None, keys: str | None, adopt: bool) -> str:
    config, provider, _, _ = open_init(home, secret_file, keys)
    request_issuing(home, config, provider, adopt=adopt)
    return (
        f"issuing key made; its request is {home.ca_dir / 'issuing.csr.pem'}: carry it to "
        "the root's machine ('certdesk sign-issuing'), then run here "
        "'certdesk init --import-issuing FILE'"
    )


def sign_request(home: Home, secret_file: Path | None, csr: Path, out: Path) -> str:
    config = load_config(home.root)
    secret, source = resolve_secret(home, config, secret_file)
    provider = provider_for(home, config, secret, source)
    pem = sign_issuing(home, config, provider, csr.read_bytes(), str(csr))
    out.write_bytes(pem)
    issuing, root = x509.load_pem_x509_certificates(pem)
    return (
        f"issuing CA {issuing.subject.rfc4514_string()} signed into {out} (its certificate, "
        f"then the root's): carry it back. Root SHA-256 fingerprint {_fingerprint(root)}"
    )


def import_certificate(home: Home, secret_file: Path | None, certificate: Path) -> str:
    config = load_config(home.root)
    secret, source = resolve_secret(home, config, secret_file)
    provider = provider_for(home, config, secret, source)
    import_issuing(home, provider, certificate.read_bytes(), str(certificate))
    publish_ca(home, config, secret, source)
    root = x509.load_pem_x509_certificate((home.ca_dir / "root.pem").read_bytes())
    return (
        f"issuing CA installed in {home.ca_dir} and its chain published; compare the root's "
        f"SHA-256 fingerprint with the root's own: {_fingerprint(root)}"
    )
