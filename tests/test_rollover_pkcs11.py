"""Issuing CA rollover with the keys in a token (SoftHSM2): the new key is made in the
token under ``<issuing_key_label>-gen2``, sensitive and never extractable; a rollover
killed after the key was made and before the store's commit leaves the old state, and
the next rollover adopts that key (never a second one under the label); the daemon then
signs with gen2, whose CRL and OCSP responses are signed in the token and verify with
openssl; a gen1 certificate cancelled after the rollover is in gen1's CRL only.

Skipped, saying why, without softhsm2 or python-pkcs11 (``make test`` installs both)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from daemon_support import make_csr, wait_for
from pkcs11_support import PIN, Token, open_token, pkcs11_home, requires_softhsm
from rollover_support import kill_9, listed_issuers, start_rollover, store_locked
from serve_support import cancel

from ca_helpers import pkilint_findings
from conftest import drop, ledger_rows, receipt, run_certdesk

pytestmark = requires_softhsm


def _openssl(*args: str | Path) -> str:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _private_keys(token: Token) -> dict[str, list[dict[str, bool]]]:
    from pkcs11 import Attribute, ObjectClass

    found: dict[str, list[dict[str, bool]]] = {}
    with open_token(token).open(user_pin=PIN) as session:
        for key in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            flags = {name: bool(key[getattr(Attribute, name)]) for name in (
                "SENSITIVE", "ALWAYS_SENSITIVE", "EXTRACTABLE", "NEVER_EXTRACTABLE", "TOKEN",
                "PRIVATE", "SIGN", "DECRYPT")}  # fmt: skip
            found.setdefault(key.label, []).append(flags)
    return found


def _crl_serials(crl: Path, issuer: Path) -> set[int]:
    assert "verify OK" in _openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", issuer,
                                   "-noout", "-verify")  # fmt: skip
    assert pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX", crl) == []
    return {r.serial_number for r in x509.load_der_x509_crl(crl.read_bytes())}


def _kill_between_key_and_commit(home: Path, token: Token) -> None:
    """``certdesk rollover`` held at its commit by a write lock on the store, once its key
    is in the token and its certificate in ``state/ca/gen2/``, then ``kill -9``."""
    gen2 = home / "state" / "ca" / "gen2"
    proc = start_rollover(home, env=token.env)
    try:
        wait_for(lambda: gen2.is_dir() or proc.poll() is not None, 60, "state/ca/gen2/")
        with store_locked(home):
            wait_for(lambda: (gen2 / "issuing.pem").exists() or proc.poll() is not None, 60,
                     "the new certificate")  # fmt: skip
            assert proc.poll() is None, proc.communicate()
            kill_9(proc)
    finally:
        kill_9(proc)
    assert listed_issuers(home) == {}, "killed before its commit: gen2 exists for nobody"
    assert len(_private_keys(token)["certdesk-issuing-gen2"]) == 1


def test_a_pkcs11_rollover_keys_in_the_token_crl_and_ocsp_signed_there(
    token: Token, tmp_path: Path
) -> None:
    home = pkcs11_home(tmp_path / "home", token, issuing_key="rsa3072")
    run_certdesk(home, "init", "--keys", "pkcs11", env=token.env)
    for n in (1, 2):
        drop(home, f"old{n}.csr", make_csr(n))
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    old = [receipt(home, f"old{n}.csr") for n in (1, 2)]

    _kill_between_key_and_commit(home, token)
    drop(home, "between.csr", make_csr(3))  # the daemon still signs with gen1
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    assert ledger_rows(home)[-1]["Emittente"] == "gen1"

    made = run_certdesk(home, "rollover", env=token.env)
    assert "gen2" in made.stdout and set(listed_issuers(home)) == {"gen2"}
    keys = _private_keys(token)
    assert sorted(keys) == ["certdesk-issuing", "certdesk-issuing-gen2", "certdesk-root"]
    assert len(keys["certdesk-issuing-gen2"]) == 1  # the killed rollover's key, adopted
    assert keys["certdesk-issuing-gen2"][0] == {
        "SENSITIVE": True, "ALWAYS_SENSITIVE": True, "EXTRACTABLE": False,
        "NEVER_EXTRACTABLE": True, "TOKEN": True, "PRIVATE": True, "SIGN": True,
        "DECRYPT": False,
    }  # fmt: skip
    assert not list((home / "state" / "ca").rglob("*.key.pem"))  # no key in files

    for n in (4, 5):
        drop(home, f"new{n}.csr", make_csr(n))
    run_certdesk(home, "watch", "--once", "--workers", "2", env=token.env)
    new = [receipt(home, f"new{n}.csr") for n in (4, 5)]
    ca = home / "outbox" / "ca"
    gen2 = x509.load_pem_x509_certificate((ca / "gen2" / "issuing.pem").read_bytes())
    assert "G2" in gen2.subject.rfc4514_string()
    for r in new:
        leaf = home / "outbox" / "certs" / str(r["certificato"])
        assert ": OK" in _openssl("verify", "-CAfile", ca / "root.pem", "-untrusted",
                                  ca / "gen2" / "issuing.pem", leaf)  # fmt: skip
        assert ": OK" in _openssl("verify", "-CAfile", ca / "root.pem", "-untrusted",
                                  ca / "gen2" / "chain.pem", leaf)  # fmt: skip
    by_id = {row["IdOperazione"]: row["Emittente"] for row in ledger_rows(home)}
    assert [by_id[str(r["id_operazione"])] for r in old + new] == ["gen1"] * 2 + ["gen2"] * 2

    # a gen1 certificate and a gen2 certificate cancelled after the rollover
    cancel(home, 1, str(old[0]["id_operazione"]), "FURTO_CERTIFICATO", wait=False)
    cancel(home, 4, str(new[0]["id_operazione"]), "CHIAVE_SMARRITA", wait=False)
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    serial = {
        str(r["id_operazione"]): x509.load_pem_x509_certificate(
            (home / "outbox" / "certs" / str(r["certificato"])).read_bytes()
        ).serial_number
        for r in old + new
    }
    in_gen1 = _crl_serials(ca / "issuing.crl", ca / "issuing.pem")
    in_gen2 = _crl_serials(ca / "gen2" / "issuing.crl", ca / "gen2" / "issuing.pem")
    assert in_gen1 == {serial[str(old[0]["id_operazione"])]}
    assert in_gen2 == {serial[str(new[0]["id_operazione"])]}
    _check_ocsp(home, new, serial)


def _check_ocsp(home: Path, new: list[dict[str, object]], serial: dict[str, int]) -> None:
    """gen2's pre-signed OCSP responses: signed in the token, verified by openssl."""
    ca = home / "outbox" / "ca"
    for r, status in zip(new, ("revoked", "good"), strict=True):
        leaf = home / "outbox" / "certs" / str(r["certificato"])
        response = home / "outbox" / "ocsp" / f"{serial[str(r['id_operazione'])]:x}.der"
        wait_for(response.exists, 30, f"the OCSP response of {r['id_operazione']}")
        out = _openssl("ocsp", "-respin", response, "-issuer", ca / "gen2" / "issuing.pem",
                       "-cert", leaf, "-CAfile", ca / "root.pem",
                       "-VAfile", ca / "gen2" / "issuing.pem", "-no_nonce")  # fmt: skip
        assert "Response verify OK" in out and f": {status}" in out, out
        assert pkilint_findings("lint_ocsp_response", response) == []
