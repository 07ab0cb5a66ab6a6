"""The offline-root ceremony (issue 16, item 3; docs/hsm.md), end to end through the
command line: the root in one home, the issuing CA in another (each with its own token,
or with key files), the CSR and the certificates carried between them as files. The
issuing home never holds the root's key; the chain it publishes verifies; its daemon
issues. Wrong files at each step are one clear line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon_support import make_csr
from pkcs11_support import (
    PIN,
    init_token,
    open_token,
    pkcs11_home,
    requires_softhsm,
)

from conftest import drop, receipt, run_certdesk

FILE_TOML = '[ca]\nroot_key = "rsa2048"\nissuing_key = "ec-p256"\n'


def _ceremony(root: Path, issuing: Path, env_root: dict[str, str],
              env_issuing: dict[str, str]) -> Path:  # fmt: skip
    """The four steps, as docs/hsm.md tells them; returns the carried-back file."""
    out = run_certdesk(root, "init", "--root-only", env=env_root).stdout
    assert "Root SHA-256 fingerprint" in out
    out = run_certdesk(issuing, "init", "--issuing-only", env=env_issuing).stdout
    csr = issuing / "state" / "ca" / "issuing.csr.pem"
    assert str(csr) in out
    carried = root.parent / "carried.csr"
    carried.write_bytes(csr.read_bytes())
    signed = root.parent / "issuing-chain.pem"
    run_certdesk(root, "sign-issuing", str(carried), "--out", str(signed), env=env_root)
    back = issuing.parent / "from-root.pem"
    back.write_bytes(signed.read_bytes())
    run_certdesk(issuing, "init", "--import-issuing", str(back), env=env_issuing)
    return back


def _check_issuing_home(root: Path, issuing: Path, env: dict[str, str]) -> None:
    assert not list(issuing.rglob("root.key*"))  # the root's key is not here
    assert (issuing / "outbox" / "ca" / "root.pem").read_bytes() == (
        root / "state" / "ca" / "root.pem"
    ).read_bytes()
    drop(issuing, "p.csr", make_csr(3))
    run_certdesk(issuing, "watch", "--once", "--workers", "1", env=env)
    result = receipt(issuing, "p.csr")
    assert result["esito"] == "OK", result
    leaf = issuing / "outbox" / "certs" / result["certificato"]
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", str(root / "state" / "ca" / "root.pem"),
         "-untrusted", str(issuing / "outbox" / "ca" / "issuing.pem"), str(leaf)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0 and ": OK" in proc.stdout, proc.stdout + proc.stderr


def test_the_ceremony_with_key_files(tmp_path: Path) -> None:
    root, issuing = tmp_path / "root" / "home", tmp_path / "issuing" / "home"
    for home in (root, issuing):
        home.mkdir(parents=True)
        (home / "certdesk.toml").write_text(FILE_TOML)
    _ceremony(root, issuing, {}, {})
    assert (root / "state" / "ca" / "root.key.pem").exists()
    assert not (root / "state" / "ca" / "issuing.pem").exists()
    _check_issuing_home(root, issuing, {})
    # the root's home issues nothing: it has no issuing CA
    refused = run_certdesk(root, "watch", "--once", check=False)
    assert "CA_NON_INIZIALIZZATA" in refused.stderr and "--root-only" in refused.stderr


def test_wrong_files_in_the_ceremony_are_one_clear_line(tmp_path: Path) -> None:
    root, issuing, other = (tmp_path / n for n in ("root", "issuing", "other"))
    for home in (root, issuing, other):
        home.mkdir()
        (home / "certdesk.toml").write_text(FILE_TOML)
    run_certdesk(root, "init", "--root-only")
    run_certdesk(issuing, "init", "--issuing-only")
    run_certdesk(other, "init", "--issuing-only")
    waiting = run_certdesk(issuing, "watch", "--once", check=False)
    assert "CA_NON_INIZIALIZZATA" in waiting.stderr and "--import-issuing" in waiting.stderr
    not_a_csr = tmp_path / "x.csr"
    not_a_csr.write_text("not a request")
    pending = str(issuing / "state" / "ca" / "issuing.csr.pem")
    out = str(tmp_path / "o.pem")
    cases = [
        (root, ("sign-issuing", str(not_a_csr), "--out", out), "csr"),
        (issuing, ("sign-issuing", pending, "--out", out), "home della radice"),
    ]
    for home, args, words in cases:
        result = run_certdesk(home, *args, check=False)
        assert "CERIMONIA_NON_VALIDA" in result.stderr and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    # a certificate signed for another home's key is refused by this one
    signed = tmp_path / "for-other.pem"
    run_certdesk(root, "sign-issuing", str(other / "state" / "ca" / "issuing.csr.pem"),
                 "--out", str(signed))  # fmt: skip
    result = run_certdesk(issuing, "init", "--import-issuing", str(signed), check=False)
    assert "CERIMONIA_NON_VALIDA" in result.stderr and "un'altra richiesta" in result.stderr
    result = run_certdesk(issuing, "init", "--import-issuing", str(not_a_csr), check=False)
    assert "CERIMONIA_NON_VALIDA" in result.stderr and "Traceback" not in result.stderr
    run_certdesk(other, "init", "--import-issuing", str(signed))  # its own: accepted


@requires_softhsm
def test_the_ceremony_with_two_tokens(softhsm_conf: Path, tmp_path: Path) -> None:
    from pkcs11 import Attribute, ObjectClass

    root_token, issuing_token = init_token(softhsm_conf), init_token(softhsm_conf)
    root = pkcs11_home(tmp_path / "root", root_token)
    issuing = pkcs11_home(tmp_path / "issuing", issuing_token, issuing_key="ec-p256")
    _ceremony(root, issuing, root_token.env, issuing_token.env)
    _check_issuing_home(root, issuing, issuing_token.env)
    labels: dict[str, list[str]] = {}
    for name, tok in (("root", root_token), ("issuing", issuing_token)):
        with open_token(tok).open(user_pin=PIN) as session:
            query = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
            labels[name] = sorted(k.label for k in session.get_objects(query))
    assert labels == {"root": ["certdesk-root"], "issuing": ["certdesk-issuing"]}
    assert not list((tmp_path / "root").rglob("*.key.pem"))
    assert not list((tmp_path / "issuing").rglob("*.key.pem"))


