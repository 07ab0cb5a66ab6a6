"""Shared fixtures and helpers: a real CA in a temporary home, CSRs made by the openssl
command line, and the end-to-end steps through the command line (issue, cancel, read the
outbox) that the use-case test files share."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509

if TYPE_CHECKING:
    from pkcs11_support import Token

    from certdesk.authority import CertificateAuthority
    from certdesk.errors import RequestRejected
    from certdesk.service import Engine

REPO = Path(__file__).resolve().parents[1]
CERTDESK = [sys.executable, "-m", "certdesk.cli"]
PASSPHRASE = "test-passphrase-not-secret"


def run_certdesk(
    home: Path, *args: str, check: bool = True, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE, **kw.pop("env", {})}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from certdesk.cli import main; sys.exit(main())",
            "--home",
            str(home),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **kw,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"certdesk {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def ca_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA created once per session (RSA 4096 root generation is slow); copied per test."""
    home = tmp_path_factory.mktemp("ca-template")
    (home / "certdesk.toml").write_text(
        '[ca]\nroot_key = "rsa2048"\nissuing_key = "rsa2048"\n'
        'crl_url = "http://certdesk.example/ca/issuing.crl"\n'
        "[daemon]\nrescan_seconds = 0.5\nsettle_seconds = 0.2\n"
    )
    run_certdesk(home, "init")
    return home


@pytest.fixture
def home(ca_template: Path, tmp_path: Path) -> Path:
    """A fresh home with a CA and nothing processed yet."""
    target = tmp_path / "home"
    shutil.copytree(ca_template, target)
    return target


def genpkey(path: Path, bits: int = 2048, algorithm: str = "rsa") -> Path:
    """A new private key made by ``openssl genpkey``, written to ``path``."""
    if algorithm == "rsa":
        args = [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            f"rsa_keygen_bits:{bits}",
        ]
    elif algorithm == "ec":
        args = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        args = ["openssl", "genpkey", "-algorithm", algorithm]
    subprocess.run([*args, "-out", str(path)], check=True, capture_output=True)
    return path


class KeyCache:
    """Keys made by ``openssl genpkey``, each made once per session and handed out by
    position: the n-th key of a kind a test asks for is the same in every test, and the
    keys one test gets are all different. Each test has its own home, so no home sees a key
    twice unless its test uses one twice. (Generating keys was most of the time of the
    tests that make CSRs with openssl.)"""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[tuple[str, int, int], Path] = {}

    def get(self, algorithm: str, bits: int, index: int) -> Path:
        kind = (algorithm, bits, index)
        if kind not in self.made:
            path = self.folder / f"{algorithm}-{bits}-{index}.pem"
            self.made[kind] = genpkey(path, bits, algorithm)
        return self.made[kind]


@pytest.fixture(scope="session")
def key_cache(tmp_path_factory: pytest.TempPathFactory) -> KeyCache:
    return KeyCache(tmp_path_factory.mktemp("openssl-keys"))


class CsrFactory:
    """Makes CSRs with the openssl command line, as an integrator would.

    With a ``cache`` (the ``csrs`` fixture), its n-th key of a kind is the cache's n-th;
    without one, every key is generated anew."""

    def __init__(self, folder: Path, cache: KeyCache | None = None) -> None:
        self.folder = folder
        self.cache = cache
        self.count = 0
        self.taken: dict[tuple[str, int], int] = {}

    def key(self, bits: int = 2048, *, algorithm: str = "rsa") -> Path:
        self.count += 1
        path = self.folder / f"key{self.count}.pem"
        if self.cache is None:
            return genpkey(path, bits, algorithm)
        index = self.taken.get((algorithm, bits), 0)
        self.taken[(algorithm, bits)] = index + 1
        shutil.copyfile(self.cache.get(algorithm, bits, index), path)
        return path

    def csr(
        self,
        subject: str = "/CN=RSSMRA80A01H501U",
        *,
        key: Path | None = None,
        digest: str = "-sha256",
        der: bool = False,
        bits: int = 2048,
    ) -> bytes:
        key = key or self.key(bits)
        args = ["openssl", "req", "-new", "-key", str(key), "-subj", subject, digest]
        if der:
            args += ["-outform", "DER"]
        return subprocess.run(args, check=True, capture_output=True).stdout


@pytest.fixture
def csrs(tmp_path: Path, key_cache: KeyCache) -> CsrFactory:
    folder = tmp_path / "keys"
    folder.mkdir()
    return CsrFactory(folder, key_cache)


def drop(home: Path, name: str, data: bytes) -> Path:
    """Write aside and rename into inbox/, as the README tells integrators to."""
    inbox = home / "inbox"
    inbox.mkdir(exist_ok=True)
    aside = inbox / f".{name}.tmp"
    aside.write_bytes(data)
    aside.rename(inbox / name)
    return inbox / name


def assert_kept_privately(kept: Path) -> None:
    """A kept original (``state/<folder>/<claim>/<name>``) is reachable by certdesk's user
    alone: every folder from ``state/`` down is 0700. The file's own mode is the sender's:
    certdesk never changes a file it did not create (it may have other names)."""
    import stat

    claim_folder = kept.parent
    for folder in (claim_folder, claim_folder.parent, claim_folder.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def receipt(home: Path, name: str) -> dict[str, Any]:
    from certdesk.names import safe_name

    loaded: dict[str, Any] = json.loads(
        (home / "outbox" / "receipts" / f"{safe_name(name)}.json").read_text()
    )
    return loaded


@pytest.fixture
def process_once(home: Path) -> Callable[[], subprocess.CompletedProcess[str]]:
    def run() -> subprocess.CompletedProcess[str]:
        return run_certdesk(home, "watch", "--once", "--workers", "1")

    return run


@pytest.fixture
def passphrase_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    yield


def tool(name: str) -> str:
    """A console script installed beside this interpreter (pkilint's, certdesk's)."""
    return str(Path(sys.executable).parent / name)


# -- end to end through the command line ---------------------------------------------------
PERSON = "RSSMRA80A01H501U"
OTHER = "BNCLRD70B02F205H"
COMPANY = "00743110157"


def issue(home: Path, csrs: CsrFactory, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        drop(home, name, data)
    run_certdesk(home, "watch", "--once", "--workers", "1")


def ledger_rows(home: Path) -> list[dict[str, str]]:
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def pkilint_cert(path: Path) -> None:
    result = subprocess.run(
        [tool("lint_pkix_cert"), "lint", "-s", "WARNING", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def process(home: Path) -> None:
    run_certdesk(home, "watch", "--once", "--workers", "1")


def request(home: Path, csrs: CsrFactory, cf: str, name: str, key: Path | None = None) -> str:
    drop(home, name, csrs.csr(f"/CN={cf}", key=key))
    process(home)
    result = receipt(home, name)
    assert result["esito"] == "OK", result
    return str(result["id_operazione"])


def cancel(home: Path, cf: str, *ids: str, motivazione: str = "FURTO_CERTIFICATO",
           nota: str = "") -> dict[str, Any]:  # fmt: skip
    args = ["cancel", "--codice-fiscale", cf, "--motivazione", motivazione, "--nota", nota]
    for id_op in ids:
        args += ["--id-operazione", id_op]
    name = run_certdesk(home, *args).stdout.strip()
    process(home)
    return receipt(home, name)


def codes(result: dict[str, Any]) -> list[str]:
    return [e["codice"] for e in result["errori"]]


def ledger_by_id(home: Path) -> dict[str, dict[str, str]]:
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        return {r["IdOperazione"]: r for r in csv.DictReader(fh)}


def crl(home: Path) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((home / "outbox" / "ca" / "issuing.crl").read_bytes())


def cert_path(home: Path, id_op: str) -> Path:
    return home / "outbox" / "certs" / f"{id_op}.pem"


def serial(home: Path, id_op: str) -> int:
    return x509.load_pem_x509_certificate(cert_path(home, id_op).read_bytes()).serial_number


def openssl_verify_crl(home: Path, id_op: str) -> subprocess.CompletedProcess[str]:
    ca = home / "outbox" / "ca"
    return subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(ca / "chain.pem"),
         "-CRLfile", str(ca / "issuing.crl.pem"), str(cert_path(home, id_op))],
        capture_output=True, text=True,
    )  # fmt: skip


#: An IdOperazione as the store writes them (annullamento documents in this process).
VALID_ID = "20250101-000000001"


def annullamento(**fields: object) -> dict[str, object]:
    """A valid annullamento document (as parsed, in this process); ``fields`` add or
    replace its fields."""
    document: dict[str, object] = {
        "tipo": "annullamento", "codice_fiscale": PERSON, "id_operazione": [VALID_ID],
        "motivazione": "ALTRO", "nota": "contratto chiuso", "operatore": "mario",
    }  # fmt: skip
    document.update(fields)
    return document


@pytest.fixture(scope="session")
def issued_template(
    ca_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """A home where ``certdesk watch --once`` issued three certificates for one person, one
    for another, one for a company; made once per session, copied by ``issued``. Its keys
    are its own (not the ``csrs`` fixture's), so a test's keys are new to it."""
    home = tmp_path_factory.mktemp("issued") / "home"
    shutil.copytree(ca_template, home)
    keys = tmp_path_factory.mktemp("issued-keys")
    csrs = CsrFactory(keys)
    ids = {}
    for index in range(3):
        drop(home, f"p{index}.csr", csrs.csr(f"/CN={PERSON}"))
    drop(home, "o.csr", csrs.csr(f"/CN={OTHER}"))
    drop(home, "c.csr", csrs.csr(f"/CN={COMPANY}"))
    process(home)
    for name in ("p0", "p1", "p2", "o", "c"):
        result = receipt(home, f"{name}.csr")
        assert result["esito"] == "OK"
        ids[name] = result["id_operazione"]
    return home, ids


@pytest.fixture
def issued(home: Path, issued_template: tuple[Path, dict[str, str]]) -> dict[str, str]:
    """Three certificates for one person, one for another, one for a company: this test's
    ``home`` is a copy of ``issued_template``."""
    template, ids = issued_template
    shutil.rmtree(home)
    shutil.copytree(template, home)
    return dict(ids)


# -- the request rules, in this process ----------------------------------------------------
def rejected(data: bytes, **kw: bool) -> RequestRejected:
    from certdesk.errors import RequestRejected
    from certdesk.policy import inspect_request

    with pytest.raises(RequestRejected) as caught:
        inspect_request(data, **kw)
    assert caught.value.code.isupper() and " " not in caught.value.code
    assert len(caught.value.message) > 20  # a sentence a person can act on
    return caught.value


# -- faults of the machine ------------------------------------------------------------------
def sqlite_full() -> sqlite3.OperationalError:
    """A genuine SQLITE_FULL, as SQLite raises it when the disk is full."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    try:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("SQLite did not refuse")


# -- an engine and a CA in this process ----------------------------------------------------
@pytest.fixture
def ca(home: Path) -> CertificateAuthority:
    from certdesk.authority import CertificateAuthority
    from certdesk.config import load_config
    from certdesk.home import Home

    where = Home.at(home)
    return CertificateAuthority.load(where, load_config(where.root), PASSPHRASE.encode())


@contextlib.contextmanager
def opened_engine(
    home: Path, monkeypatch: pytest.MonkeyPatch, *, workers: int, batch_size: int
) -> Iterator[Engine]:
    """An engine on ``home`` in this process, recovered, closed afterwards."""
    from daemon_support import configure

    from certdesk.home import Home
    from certdesk.runtime import open_engine

    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    configure(home, batch_size=batch_size)
    opened = open_engine(Home.at(home), workers=workers)
    opened.recover()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def engine(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine on ``home`` in this process, with chunks of 2 (the first of 1)."""
    with opened_engine(home, monkeypatch, workers=1, batch_size=2) as opened:
        yield opened


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """Fail the test if a thread it started (observer, emitter, inotify reader) is still
    alive shortly after it."""
    from daemon_support import no_leaked_threads

    with no_leaked_threads():
        yield


# -- a throw-away SoftHSM2 token (tests/pkcs11_support.py) ---------------------------------
@pytest.fixture(scope="session")
def softhsm_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pkcs11_support import softhsm_folder

    return softhsm_folder(tmp_path_factory)


@pytest.fixture
def token(softhsm_conf: Path) -> Token:
    """A new token (its own label) in the session's SoftHSM2 folder."""
    from pkcs11_support import init_token

    return init_token(softhsm_conf)
