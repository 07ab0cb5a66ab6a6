"""The key seam in this process (issue 16): ``[keys]`` settings, the PIN's sources, and a
token key through cryptography's builders: a session that fails under it is a
``TokenFault`` (a pause), the next signature opens a new session; a token key never
gives out its private half. The token tests use a SoftHSM2 token (skipped without it)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from pkcs11_support import PIN, Token, open_token, pkcs11_home, requires_softhsm

from certdesk.config import load_config
from certdesk.errors import CertdeskError
from certdesk.faults import TokenFault, machine_fault
from certdesk.hierarchy import create_ca
from certdesk.home import Home
from certdesk.keys import provider_for, resolve_secret
from conftest import run_certdesk


def _config_error(home: Path, text: str) -> str:
    (home / "certdesk.toml").write_text(text)
    with pytest.raises(CertdeskError) as caught:
        load_config(home)
    assert caught.value.code == "CONFIGURAZIONE_NON_VALIDA"
    return caught.value.message


def test_keys_settings_are_checked(tmp_path: Path) -> None:
    assert load_config(tmp_path).keys.provider == "file"
    assert "keys.provider" in _config_error(tmp_path, '[keys]\nprovider = "hsm"\n')
    assert "keys.module" in _config_error(tmp_path, '[keys]\nprovider = "pkcs11"\n')
    assert "pin" in _config_error(tmp_path, '[keys]\npin = "1234"\n')  # never in the TOML


def test_the_pin_comes_from_the_variable_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home.at(tmp_path)
    home.ensure()
    pin_file = tmp_path / "pin"
    pin_file.write_text("2468\n")
    os.chmod(pin_file, 0o600)
    toml = '[keys]\nprovider = "pkcs11"\nmodule = "/x.so"\npin_file = "pin"\n'
    (tmp_path / "certdesk.toml").write_text(toml)
    config = load_config(tmp_path)
    monkeypatch.delenv("CERTDESK_PKCS11_PIN", raising=False)
    assert resolve_secret(home, config) == (b"2468", str(pin_file))
    monkeypatch.setenv("CERTDESK_PKCS11_PIN", "1357")
    assert resolve_secret(home, config) == (b"1357", "CERTDESK_PKCS11_PIN")
    monkeypatch.delenv("CERTDESK_PKCS11_PIN")
    os.chmod(pin_file, 0o644)
    with pytest.raises(CertdeskError) as caught:
        resolve_secret(home, config)
    assert caught.value.code == "PERMESSI_CHIAVE_NON_SICURI"
    pin_file.unlink()
    with pytest.raises(CertdeskError) as caught:
        resolve_secret(home, config)
    assert caught.value.code == "PIN_MANCANTE" and "2468" not in caught.value.message


def test_a_token_fault_is_a_pause_and_crosses_processes() -> None:
    """A signing process raises it; the daemon gets it unpickled, and pauses for it."""
    fault = pickle.loads(pickle.dumps(TokenFault("TOKEN_NON_DISPONIBILE", "gone")))
    found = machine_fault(fault)
    assert found is not None and (found.code, found.message) == ("TOKEN_NON_DISPONIBILE", "gone")
    assert machine_fault(RuntimeError("a bug")) is None


@requires_softhsm
def test_a_token_key_signs_and_survives_a_lost_session(token: Token, tmp_path: Path) -> None:
    open_token(token)  # this process's library sees the token made after it started
    home = Home.at(pkcs11_home(tmp_path / "home", token, issuing_key="ec-p384"))
    config = load_config(home.root)
    create_ca(home, config, provider_for(home, config, PIN.encode(), writable=True))
    provider = provider_for(home, config, PIN.encode())
    key = provider.load("issuing")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.key_size == 384
    issuing = x509.load_pem_x509_certificate((home.ca_dir / "issuing.pem").read_bytes())
    data = b"probe"
    issuing.public_key().verify(
        key.sign(data, ec.ECDSA(hashes.SHA384())), data, ec.ECDSA(hashes.SHA384())
    )
    with pytest.raises(UnsupportedAlgorithm):
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
    root = provider.load("root")
    with pytest.raises(UnsupportedAlgorithm):
        root.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())

    link = provider.link
    link.session().close()  # the session ends under the key (token reset, HSM failover)
    with pytest.raises(TokenFault) as caught:
        key.sign(data, ec.ECDSA(hashes.SHA384()))
    assert caught.value.code == "TOKEN_NON_DISPONIBILE"
    assert machine_fault(caught.value) is not None
    key.sign(data, ec.ECDSA(hashes.SHA384()))  # a new session, logged in again


def test_init_refuses_options_that_do_not_fit(tmp_path: Path) -> None:
    (tmp_path / "certdesk.toml").write_text('[ca]\nroot_key = "ec-p256"\nissuing_key = "ec-p256"\n')
    cases = [
        (("--use-existing-keys",), "OPZIONE_NON_VALIDA", "solo con keys.provider"),
        (("--keys", "pkcs11"), "CONFIGURAZIONE_NON_VALIDA", 'keys.provider = "file"'),
        (("--import-issuing", "x.pem", "--keys", "file"), "OPZIONE_NON_VALIDA", "non vanno"),
    ]
    for args, code, words in cases:
        result = run_certdesk(tmp_path, "init", *args, check=False)
        assert result.returncode == 1, result.stderr
        assert code in result.stderr and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        # nothing left behind, not even a passphrase made for keys never written
        assert not (tmp_path / "state" / "passphrase").exists(), args
    assert not (tmp_path / "state" / "ca" / "issuing.pem").exists()
