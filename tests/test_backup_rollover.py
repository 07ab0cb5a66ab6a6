"""Backup and restore across a rollover: a home whose issuer rolled over (certificates of
gen1 and gen2, a cancellation of each, gen3 scheduled by ``--from``) is backed up while
its daemon runs and restored into a new home: every live issuer's certificate, chain and
CRL republished at its own paths in ``outbox/ca/``, each leaf verified by openssl against
its own chain, each CRL listing its own cancellation only, the restored daemon signing
with gen2, gen3 still scheduled. A PKCS#11 home that rolled over: the manifest names
every issuer's key label, and the restore refuses a token that lacks one of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cryptography import x509
from daemon_support import DaemonProcess, make_csr, wait_for, wait_receipt
from pkcs11_support import Token, open_token, pkcs11_home, requires_softhsm
from rollover_support import listed_issuers
from serve_support import cancel

from ca_helpers import pkilint_findings
from conftest import drop, ledger_rows, receipt, run_certdesk

LATER = "2031-01-01T00:00:00Z"


def _openssl(*args: str | Path) -> str:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _crl_serials(crl: Path, issuer: Path) -> set[int]:
    assert "verify OK" in _openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", issuer,
                                   "-noout", "-verify")  # fmt: skip
    # numbered from the restore's time in milliseconds: still a clean CRL
    assert pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX", crl) == []
    return {r.serial_number for r in x509.load_der_x509_crl(crl.read_bytes())}


def _serial(home: Path, r: dict[str, object]) -> int:
    path = home / "outbox" / "certs" / str(r["certificato"])
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _rolled_home(home: Path, backup: Path) -> tuple[list[dict[str, object]], ...]:
    """gen1's and gen2's certificates, a cancellation of each, gen3 from ``LATER``;
    the backup taken while the daemon runs."""
    with DaemonProcess(home) as daemon:
        for n in (1, 2):
            drop(home, f"old{n}.csr", make_csr(n))
        old = [wait_receipt(home, f"old{n}.csr") for n in (1, 2)]
        run_certdesk(home, "rollover")
        wait_for(lambda: (home / "outbox/ca/gen2/issuing.crl").exists(), 30, "gen2's CRL")
        for n in (3, 4):
            drop(home, f"new{n}.csr", make_csr(n))
        new = [wait_receipt(home, f"new{n}.csr") for n in (3, 4)]
        for n, r, why in ((1, old[0], "FURTO_CERTIFICATO"), (3, new[0], "CHIAVE_SMARRITA")):
            name = cancel(home, n, str(r["id_operazione"]), why, wait=False)
            assert wait_receipt(home, name)["esito"] == "OK"
        assert "gen3" in run_certdesk(home, "rollover", "--from", LATER).stdout
        # the daemon publishes gen3 at its next periodic pass; stopped before, it would not
        wait_for(lambda: (home / "outbox/ca/gen3/issuing.crl").exists(), 30, "gen3's CRL")
        run_certdesk(home, "backup", str(backup))  # the daemon running
        assert daemon.stop() == 0
    return old, new


def test_a_home_that_rolled_over_is_backed_up_live_and_restored_whole(
    home: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    old, new = _rolled_home(home, backup)
    scheduled = listed_issuers(home)
    assert set(scheduled) == {"gen2", "gen3"} and scheduled["gen3"].startswith("2031-01-01")
    restored = tmp_path / "restored"
    run_certdesk(restored, "restore", str(backup))
    assert listed_issuers(restored) == scheduled  # gen3 still from LATER

    ca = restored / "outbox" / "ca"
    for folder in (ca, ca / "gen2", ca / "gen3"):
        names = {"issuing.pem", "chain.pem", "issuing.crl"}
        assert names <= {p.name for p in folder.iterdir()}, folder
        assert (folder / "issuing.pem").read_bytes() == (
            home / "outbox" / "ca" / folder.relative_to(ca) / "issuing.pem"
        ).read_bytes()
    assert (ca / "root.pem").exists()
    for r, chain in ((old[1], ca / "chain.pem"), (new[1], ca / "gen2" / "chain.pem")):
        leaf = restored / "outbox" / "certs" / str(r["certificato"])
        assert ": OK" in _openssl("verify", "-CAfile", ca / "root.pem", "-untrusted", chain, leaf)
    assert _crl_serials(ca / "issuing.crl", ca / "issuing.pem") == {_serial(home, old[0])}
    in_gen2 = _crl_serials(ca / "gen2" / "issuing.crl", ca / "gen2" / "issuing.pem")
    assert in_gen2 == {_serial(home, new[0])}
    assert _crl_serials(ca / "gen3" / "issuing.crl", ca / "gen3" / "issuing.pem") == set()

    with DaemonProcess(restored):  # issuing goes on with gen2 (gen3 waits for its date)
        drop(restored, "after.csr", make_csr(9))
        after = wait_receipt(restored, "after.csr")
    assert after["esito"] == "OK"
    row = next(r for r in ledger_rows(restored) if r["IdOperazione"] == after["id_operazione"])
    assert row["Emittente"] == "gen2"
    leaf = restored / "outbox" / "certs" / str(after["certificato"])
    assert ": OK" in _openssl("verify", "-CAfile", ca / "root.pem", "-untrusted",
                              ca / "gen2" / "chain.pem", leaf)  # fmt: skip
    assert listed_issuers(restored)["gen3"] == scheduled["gen3"]
    assert "intact" in run_certdesk(restored, "verify-ledger").stdout


@requires_softhsm
def test_a_token_home_that_rolled_over_names_every_key_and_restore_checks_them(
    token: Token, tmp_path: Path
) -> None:
    home = pkcs11_home(tmp_path / "home", token)
    run_certdesk(home, "init", "--keys", "pkcs11", env=token.env)
    run_certdesk(home, "rollover", env=token.env)
    drop(home, "t.csr", make_csr(1))
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    assert receipt(home, "t.csr")["esito"] == "OK"
    dest = tmp_path / "b"
    run_certdesk(home, "backup", str(dest), env=token.env)
    keys = json.loads((dest / "manifest.json").read_text())["keys"]
    assert keys["issuing_key_label"] == "certdesk-issuing"
    assert keys["issuing_key_label_gen2"] == "certdesk-issuing-gen2"
    run_certdesk(tmp_path / "same", "restore", str(dest), env=token.env)
    assert (tmp_path / "same" / "outbox" / "ca" / "gen2" / "issuing.crl").exists()

    # the token lost gen2's key (gen1's and the root's are there): refused, nothing made
    import pkcs11

    with open_token(token).open(user_pin=token.pin, rw=True) as session:
        query = {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                 pkcs11.Attribute.LABEL: "certdesk-issuing-gen2"}  # fmt: skip
        for key in list(session.get_objects(query)):
            key.destroy()
    result = run_certdesk(tmp_path / "elsewhere", "restore", str(dest), check=False,
                          env=token.env)  # fmt: skip
    assert result.returncode == 1 and "TOKEN_NON_DISPONIBILE" in result.stderr, result.stderr
    assert "certdesk-issuing-gen2" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "elsewhere").exists()
