"""Shared fixtures: a real CA in a temporary home, CSRs made by the openssl command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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
    import shutil

    target = tmp_path / "home"
    shutil.copytree(ca_template, target)
    return target


class CsrFactory:
    """Makes CSRs with the openssl command line, as an integrator would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def key(self, bits: int = 2048, *, algorithm: str = "rsa") -> Path:
        self.count += 1
        path = self.folder / f"key{self.count}.pem"
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
def csrs(tmp_path: Path) -> CsrFactory:
    folder = tmp_path / "keys"
    folder.mkdir()
    return CsrFactory(folder)


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
