"""The CA's keys in a token (issue 16), on a throw-away SoftHSM2 token: a PKCS#11 home
issues, cancels and publishes, and openssl and pkilint accept all it signs; the keys
never leave the token (never extractable; no file of the home holds private key
material); a wrong PIN is offered once, ever; a token that goes away is a pause, never a
refusal, and the daemon resumes when it comes back.

Skipped, saying why, without softhsm2 or python-pkcs11 (``make test`` installs both).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key
from daemon_support import DaemonProcess, codice_fiscale, heartbeat, make_csr, wait_for
from pkcs11_support import (
    PIN,
    Token,
    open_token,
    pkcs11_home,
    requires_softhsm,
)

from ca_helpers import pkilint_findings
from conftest import CsrFactory, drop, pkilint_cert, receipt, run_certdesk

pytestmark = requires_softhsm
SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"


def _init(home: Path, token: Token, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_certdesk(home, "init", "--keys", "pkcs11", *extra, env=token.env)


def _openssl(*args: str | Path) -> str:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("kinds", [("rsa2048", "rsa2048"), ("ec-p384", "ec-p256")],
                         ids=["rsa", "ec"])  # fmt: skip
def test_a_pkcs11_home_issues_cancels_and_publishes(
    token: Token, tmp_path: Path, csrs: CsrFactory, kinds: tuple[str, str]
) -> None:
    home = pkcs11_home(tmp_path / "home", token, root_key=kinds[0], issuing_key=kinds[1])
    _init(home, token)
    names = {f"p{n}.csr": make_csr(n) for n in range(6)}
    for name, data in names.items():
        drop(home, name, data)
    run_certdesk(home, "watch", "--once", "--workers", "2", env=token.env)
    ids = [receipt(home, name)["id_operazione"] for name in names]
    ca = home / "outbox" / "ca"
    chain = [ca / "root.pem", ca / "issuing.pem"]
    for id_op in ids:
        leaf = home / "outbox" / "certs" / f"{id_op}.pem"
        assert ": OK" in _openssl("verify", "-CAfile", chain[0], "-untrusted", chain[1], leaf)
    pkilint_cert(home / "outbox" / "certs" / f"{ids[0]}.pem")
    for path in chain:
        pkilint_cert(path)

    done = run_certdesk(
        home, "cancel", "--codice-fiscale", codice_fiscale(0), "--id-operazione", ids[0],
        "--motivazione", "FURTO_CERTIFICATO", env=token.env,
    ).stdout.strip()  # fmt: skip
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    assert receipt(home, done)["esito"] == "OK"

    crl = ca / "issuing.crl"
    assert "verify OK" in _openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", chain[1],
                                   "-noout")  # fmt: skip
    assert pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX", crl) == []
    for id_op, expected in ((ids[0], "revoked"), (ids[1], "good")):
        leaf = x509.load_pem_x509_certificate(
            (home / "outbox" / "certs" / f"{id_op}.pem").read_bytes()
        )
        response = home / "outbox" / "ocsp" / f"{leaf.serial_number:x}.der"
        wait_for(response.exists, 30, f"the OCSP response of {id_op}")
        out = _openssl("ocsp", "-respin", response, "-issuer", chain[1], "-cert",
                       home / "outbox" / "certs" / f"{id_op}.pem", "-CAfile", chain[0],
                       "-VAfile", chain[1], "-no_nonce")  # fmt: skip
        assert "Response verify OK" in out and f": {expected}" in out, out
        assert pkilint_findings("lint_ocsp_response", response) == []


def _blobs(data: bytes) -> list[bytes]:
    """A file's bytes and the bytes of each PEM block in it."""
    found = [data]
    for block in re.findall(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END", data, re.S):
        found.append(base64.b64decode(b"".join(block.split())))
    return found


def test_the_keys_never_leave_the_token(token: Token, tmp_path: Path) -> None:
    from pkcs11 import Attribute, ObjectClass

    home = pkcs11_home(tmp_path / "home", token)
    _init(home, token)
    for n in range(3):
        drop(home, f"p{n}.csr", make_csr(n))
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    with open_token(token).open(user_pin=PIN) as session:
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
        assert sorted(k.label for k in keys) == ["certdesk-issuing", "certdesk-root"]
        for key in keys:
            assert key[Attribute.NEVER_EXTRACTABLE] and not key[Attribute.EXTRACTABLE]
            assert key[Attribute.SENSITIVE] and key[Attribute.ALWAYS_SENSITIVE]
    # No file of the home holds a private key: no PEM of one, no DER that loads as one,
    # and the CA keys' moduli only inside certificates (a PKCS#8 or PKCS#1 key holds it).
    moduli = []
    for name in ("root.pem", "issuing.pem"):
        public = x509.load_pem_x509_certificate((home / "state" / "ca" / name).read_bytes())
        key = public.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        moduli.append(key.public_numbers().n.to_bytes(key.key_size // 8, "big"))
    scanned = 0
    for path in (p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert b"PRIVATE KEY" not in data, path
        for blob in _blobs(data):
            with pytest.raises((ValueError, TypeError)):
                load_der_private_key(blob, password=None)
            if any(n in blob for n in moduli):
                x509.load_der_x509_certificate(blob)  # else: a key's modulus outside a cert
        scanned += 1
    assert scanned > 20


def test_a_wrong_pin_is_offered_once_ever(token: Token, tmp_path: Path) -> None:
    """The token is reached through OpenSC's pkcs11-spy, which logs every call: the wrong
    PIN reaches C_Login once; the next start, with the same PIN, not at all; the right PIN
    then logs in (the token is not locked) and clears the memory of the refusal."""
    if not os.path.exists(SPY):
        pytest.skip("pkcs11-spy (Debian's opensc-pkcs11) is not installed")
    home = pkcs11_home(tmp_path / "home", token)
    _init(home, token)
    log = tmp_path / "spy.log"
    toml = (home / "certdesk.toml").read_text().replace(token.module, SPY)
    (home / "certdesk.toml").write_text(toml)
    spy = {**token.env, "PKCS11SPY": token.module, "PKCS11SPY_OUTPUT": str(log)}
    wrong = {**spy, "CERTDESK_PKCS11_PIN": "0000"}

    first = run_certdesk(home, "watch", "--once", check=False, env=wrong)
    assert first.returncode == 1 and "PIN_ERRATO" in first.stderr, first.stderr
    assert "Traceback" not in first.stderr and "0000" not in first.stderr
    assert log.read_text().count("C_Login") == 1
    log.unlink()
    again = run_certdesk(home, "watch", "--once", check=False, env=wrong)
    assert again.returncode == 1 and "PIN_ERRATO" in again.stderr, again.stderr
    assert "già stato rifiutato" in again.stderr
    assert "C_Login" not in (log.read_text() if log.exists() else "")

    from pkcs11 import TokenFlag

    flags = open_token(token).flags
    assert not flags & (TokenFlag.USER_PIN_LOCKED | TokenFlag.USER_PIN_FINAL_TRY)
    drop(home, "p.csr", make_csr(1))
    run_certdesk(home, "watch", "--once", env=spy)
    assert receipt(home, "p.csr")["esito"] == "OK"
    assert not (home / "state" / "pkcs11-pin-refused").exists()


def test_no_pin_and_no_token_are_one_clear_line(token: Token, tmp_path: Path) -> None:
    home = pkcs11_home(tmp_path / "home", token)
    no_pin = {k: v for k, v in token.env.items() if k != "CERTDESK_PKCS11_PIN"}
    result = run_certdesk(home, "init", "--keys", "pkcs11", check=False,
                          env={**no_pin, "CERTDESK_PKCS11_PIN": ""})  # fmt: skip
    assert "PIN_MANCANTE" in result.stderr and "Traceback" not in result.stderr
    for wrong, words in ((token.label, "Nessun token con etichetta absent"),
                         (token.module, "Impossibile caricare la libreria")):  # fmt: skip
        right = wrong
        absent = "absent" if wrong == token.label else str(tmp_path / "missing.so")
        (home / "certdesk.toml").write_text(token.toml().replace(right, absent))
        result = run_certdesk(home, "init", "--keys", "pkcs11", check=False, env=token.env)
        assert "TOKEN_NON_DISPONIBILE" in result.stderr and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    (home / "certdesk.toml").write_text(token.toml())
    result = run_certdesk(home, "init", "--keys", "file", check=False, env=token.env)
    assert "CONFIGURAZIONE_NON_VALIDA" in result.stderr and "Traceback" not in result.stderr


def test_keys_made_by_the_tokens_own_tools_are_adopted(token: Token, tmp_path: Path) -> None:
    if shutil.which("pkcs11-tool") is None:
        pytest.skip("pkcs11-tool (Debian's opensc) is not installed")
    home = pkcs11_home(tmp_path / "home", token, issuing_key="ec-p256")
    for label, kind, key_id in (("certdesk-root", "rsa:2048", "01"),
                                ("certdesk-issuing", "EC:prime256v1", "02")):  # fmt: skip
        subprocess.run(
            ["pkcs11-tool", "--module", token.module, "--token-label", token.label, "--login",
             "--pin", PIN, "--keypairgen", "--key-type", kind, "--label", label, "--id", key_id],
            check=True, capture_output=True, env={**os.environ, **token.env},
        )  # fmt: skip
    refused = run_certdesk(home, "init", "--keys", "pkcs11", check=False, env=token.env)
    assert "TOKEN_NON_DISPONIBILE" in refused.stderr and "già una chiave" in refused.stderr
    shutil.rmtree(home / "state", ignore_errors=True)
    adopted = _init(home, token, "--use-existing-keys")
    assert "adopted" in adopted.stdout
    issuing = x509.load_pem_x509_certificate((home / "state" / "ca" / "issuing.pem").read_bytes())
    assert isinstance(issuing.public_key(), ec.EllipticCurvePublicKey)
    drop(home, "p.csr", make_csr(2))
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    assert receipt(home, "p.csr")["esito"] == "OK"


def _token_folder(token: Token) -> Path:
    for folder in (token.conf.parent / "tokens").iterdir():
        if token.label.encode() in (folder / "token.object").read_bytes():
            return folder
    raise AssertionError(f"no folder for token {token.label}")


@pytest.mark.slow
def test_a_token_that_goes_away_is_a_pause_never_a_refusal(
    token: Token, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = pkcs11_home(tmp_path / "home", token)
    _init(home, token)
    for name, value in token.env.items():
        monkeypatch.setenv(name, value)  # DaemonProcess passes os.environ on
    daemon = DaemonProcess(home, workers=1).start()
    try:
        drop(home, "before.csr", make_csr(1))
        wait_for(lambda: (home / "outbox" / "receipts" / "before.csr.json").exists(), 20)
        folder = _token_folder(token)
        # The token is "removed": out of the token folder (SoftHSM2 finds a token in any
        # folder under it, whatever its name).
        away = tmp_path / "away"
        folder.rename(away)
        for n in range(2, 6):
            drop(home, f"during-{n}.csr", make_csr(n))
        try:
            paused = wait_for(lambda: (heartbeat(home).get("pausa") or {}).get("codice"), 20,
                              "the pause")  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{daemon.log()}\n{heartbeat(home)}") from None
        assert paused == "TOKEN_NON_DISPONIBILE"
        assert not list((home / "outbox" / "receipts").glob("during-*"))
        away.rename(folder)  # and back
        wait_for(lambda: len(list((home / "outbox" / "receipts").glob("during-*"))) == 4, 30,
                 "the receipts after the token came back")  # fmt: skip
        for n in range(2, 6):
            assert receipt(home, f"during-{n}.csr")["esito"] == "OK"
        wait_for(lambda: heartbeat(home).get("state") == "running", 30, "the end of the pause")
    finally:
        daemon.close()
    assert "paused: TOKEN_NON_DISPONIBILE" in daemon.log(), daemon.log()
    assert "Traceback" not in daemon.log()
    assert json.loads((home / "outbox" / "daemon.json").read_text())["pausa"] is None
