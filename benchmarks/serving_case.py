"""``certdesk serve`` under load: OCSP GETs (RFC 5019) from ``wrk``, against nginx serving
the same response files, on a home of many issued certificates.

The population's certificates are opaque blobs (``scale.populate``), so the responses
of a sample of its active certificates are signed here with the issuing key, by the
serials and issuer hashes a relying party's requests carry; the responder reads them as
it reads the daemon's. Both servers get the same clients, taking turns.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp

from certdesk.authority import CertificateAuthority
from certdesk.config import load_config, public_urls
from certdesk.home import Home
from certdesk.outbox import Outbox
from certdesk.revocation import ocsp_file_name
from certdesk.states import Stato
from certdesk.store import Store

from .homes import CERTDESK, ENV, PASSPHRASE, new_home
from .progress import log
from .scale import populate
from .scale_case import build_columnar, export_ledger
from .settings import Sizes
from .static_server import static_server
from .wrk import LoadRun, wrk_run

__all__ = ["ServingResult", "serving_case"]

CLIENTS = (1, 50)


@dataclass(frozen=True)
class ServingResult:
    certificates: int  # requests in the home's store
    active: int  # of which ATTIVATO
    responses: int  # distinct responses the clients ask for
    start_s: float  # certdesk serve: start to listening
    responder: tuple[LoadRun, ...]  # in the order of ``CLIENTS``
    static: tuple[LoadRun, ...]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _active_serials(home: Path, ids: list[str]) -> list[int]:
    store = Store(home / "state" / "certdesk.sqlite3")
    try:
        records = [store.get(i) for i in ids]
    finally:
        store.close()
    return [int(r.seriale, 16) for r in records if r is not None and r.stato is Stato.ATTIVATO]


def _issuer_hashes(ca: CertificateAuthority) -> tuple[bytes, bytes]:
    """SHA-1 of the issuing CA's subject and public key bits, as a client's CertID."""
    key = ca.issuing_cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        bits = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    subject = ca.issuing_cert.subject.public_bytes()
    return hashlib.sha1(subject).digest(), hashlib.sha1(bits).digest()


def _sign_responses(home: Path, serials: list[int]) -> tuple[bytes, bytes]:
    """Good responses for ``serials`` in ``outbox/ocsp/``, as the daemon names them;
    the issuer's hashes."""
    where = Home.at(home)
    ca = CertificateAuthority.load(where, load_config(where.root), PASSPHRASE.encode())
    name_hash, key_hash = _issuer_hashes(ca)
    now = datetime.now(UTC).replace(microsecond=0)
    folder = Outbox.of(where).ocsp
    folder.mkdir(parents=True, exist_ok=True)
    for serial in serials:
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                name_hash, key_hash, serial, hashes.SHA1(), ocsp.OCSPCertStatus.GOOD,
                now, now + timedelta(days=4), None, None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.issuing_cert)
            .sign(ca.issuing_key, hashes.SHA256())
        )  # fmt: skip
        (folder / ocsp_file_name(serial)).write_bytes(response.public_bytes(Encoding.DER))
    return name_hash, key_hash


def _get_paths(ocsp_path: str, hashes_: tuple[bytes, bytes], serials: list[int]) -> list[str]:
    """RFC 5019 GET paths: ``<ocsp path>/<url-encoded base64 of the DER request>``."""
    paths = []
    for serial in serials:
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(hashes_[0], hashes_[1], serial, hashes.SHA1())
            .build()
        )
        b64 = base64.b64encode(request.public_bytes(Encoding.DER)).decode("ascii")
        paths.append(f"{ocsp_path}/{quote(b64, safe='')}")
    return paths


def _wait_answering(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"certdesk serve exited at start ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.headers.get("Content-Type") != "application/ocsp-response":
                    raise RuntimeError("certdesk serve did not answer an OCSP response")
                return
        except urllib.error.URLError:
            time.sleep(0.02)
    raise RuntimeError("certdesk serve did not answer within 60 s")


@contextlib.contextmanager
def _responder(home: Path, port: int, probe: str) -> Iterator[tuple[str, float]]:
    """``certdesk serve`` on ``port`` (its access log to a file); its base URL and the
    seconds from its start to its first OCSP answer."""
    base = f"http://127.0.0.1:{port}"
    with open(home.parent / "serve.log", "wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*CERTDESK, "--home", str(home), "serve", "--listen", f"127.0.0.1:{port}"],
            env=ENV, stdout=log_file, stderr=log_file,
        )  # fmt: skip
        try:
            _wait_answering(proc, base + probe)
            yield base, time.perf_counter() - started
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _load(work: Path, base: str, paths: list[str], seconds: float) -> list[LoadRun]:
    return [wrk_run(work, base, paths, clients, seconds) for clients in CLIENTS]


def serving_case(template: Path, work: Path, sizes: Sizes) -> ServingResult:
    """A home of ``sizes.serving_store`` requests; responses for a sample of its active
    certificates; the responder and nginx under the same clients, in turn."""
    home = new_home(template, work, "serving")
    log(f"serving: populating {sizes.serving_store:,} certificates")
    population = populate(home, sizes.serving_store, samples=sizes.serving_sample)
    store = Store(home / "state" / "certdesk.sqlite3")
    export_ledger(home, store)  # the responder's serial index reads the ledger
    build_columnar(home, store)
    store.close()
    serials = _active_serials(home, population.sample_id)
    issuer = _sign_responses(home, serials)
    config = load_config(home)
    ocsp_path = urlsplit(public_urls(config).ocsp).path
    paths = _get_paths(ocsp_path, issuer, serials)
    static_paths = [f"/ocsp/{ocsp_file_name(s)}" for s in serials]
    files = Outbox.of(Home.at(home)).ocsp
    log("serving: wrk against certdesk serve and nginx, in turn")
    with _responder(home, _free_port(), paths[0]) as (base, start_s):
        responder = _load(work, base, paths, sizes.serving_seconds)
    with static_server(work, files, _free_port()) as static_base:
        static = _load(work, static_base, static_paths, sizes.serving_seconds)
    active = population.states.get(Stato.ATTIVATO.value, 0)
    shutil.rmtree(home)
    return ServingResult(
        sizes.serving_store, active, len(serials), start_s, tuple(responder), tuple(static)
    )
