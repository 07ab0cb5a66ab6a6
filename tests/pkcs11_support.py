"""A throw-away SoftHSM2 token for the PKCS#11 tests: the token folder under the test
session's temporary folder (``SOFTHSM2_CONF``), one token per test (its own label), and a
home whose certdesk.toml points at it. Without softhsm2 or python-pkcs11 the tests that
use it are skipped, saying which is missing and how ``make test`` installs it."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
PIN = "4321-not-secret"
SO_PIN = "8765-not-secret"


def softhsm_module() -> str | None:
    return next((m for m in _MODULES if os.path.exists(m)), None)


def _missing() -> str:
    if shutil.which("softhsm2-util") is None or softhsm_module() is None:
        return "softhsm2 is not installed: 'make test' installs it as root (apt-get install)"
    if importlib.util.find_spec("pkcs11") is None:
        return "python-pkcs11 is not installed: pip install -e '.[test]' (the pkcs11 extra)"
    return ""


MISSING = _missing()
requires_softhsm = pytest.mark.skipif(bool(MISSING), reason=MISSING)


@dataclass
class Token:
    """One initialised SoftHSM2 token; ``env`` is what a certdesk process needs to use it."""

    conf: Path
    label: str
    module: str
    pin: str = PIN
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {"SOFTHSM2_CONF": str(self.conf), "CERTDESK_PKCS11_PIN": self.pin}

    def toml(self, root_key: str = "rsa2048", issuing_key: str = "rsa2048") -> str:
        return (
            f'[ca]\nroot_key = "{root_key}"\nissuing_key = "{issuing_key}"\n'
            f'[keys]\nprovider = "pkcs11"\nmodule = "{self.module}"\n'
            f'token_label = "{self.label}"\n'
            "[daemon]\nrescan_seconds = 0.3\nsettle_seconds = 0.1\n"
        )


def softhsm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``softhsm_conf`` fixture (tests/conftest.py): one token folder for this test
    process, since SoftHSM2 reads SOFTHSM2_CONF when a process initialises it; each test
    makes a token of its own label in it."""
    if MISSING:
        pytest.skip(MISSING)
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def init_token(conf: Path, label: str | None = None) -> Token:
    label = label or f"t-{secrets.token_hex(4)}"
    module = softhsm_module()
    assert module is not None
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label,
         "--pin", PIN, "--so-pin", SO_PIN],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )  # fmt: skip
    return Token(conf=conf, label=label, module=module)


def pkcs11_home(folder: Path, token: Token, **keys: str) -> Path:
    """A home configured for ``token`` (no CA yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "certdesk.toml").write_text(token.toml(**keys))
    return folder


def open_token(token: Token) -> Any:
    """``token`` in this process, through python-pkcs11 (a ``pkcs11.Token``). The library
    is initialised again first: SoftHSM2 lists the tokens made since it was initialised
    (by another test of this process) only then."""
    import pkcs11

    library = pkcs11.lib(token.module)
    library.reinitialize()
    return library.get_token(token_label=token.label)
