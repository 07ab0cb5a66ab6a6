"""certdesk backup and restore (issue 17, parts 1, 2 and 6) on real homes, through the
command line: a backup is whole or refused (a byte changed in any kind of file, a file
missing, truncated or added), written aside and renamed (a backup killed half-way leaves
no DEST), never into inbox/, outbox/ or state/; a restore goes into an empty home only,
checks the keys it restores (the passphrase, or the token that holds them), and the
restored home is the same CA. The backup under a live daemon's load is in
tests/test_backup_live.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from daemon_support import CLI, make_csr, wait_for
from engine_support import leave_in_generazione
from pkcs11_support import Token, open_token, pkcs11_home, requires_softhsm

from conftest import PASSPHRASE, drop, ledger_rows, run_certdesk


def _backup(home: Path, dest: Path, *extra: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return run_certdesk(home, "backup", str(dest), *extra, **kw)  # type: ignore[arg-type]


def _one_line_error(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(f"certdesk: {code}: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.fixture
def worked(home: Path) -> Path:
    """A home with certificates, a cancellation, a refused input and their originals."""
    for n in range(4):
        drop(home, f"r{n}.csr", make_csr(n))
    drop(home, "bad.csr", b"not a request")
    run_certdesk(home, "watch", "--once", "--workers", "1")
    first = next(r for r in ledger_rows(home) if r["Stato"] == "ATTIVATO")
    run_certdesk(home, "cancel", "--codice-fiscale", first["CodiceFiscale"], "--id-operazione",
                 first["IdOperazione"], "--motivazione", "ATTIVITA_CESSATA")  # fmt: skip
    run_certdesk(home, "watch", "--once", "--workers", "1")
    return home


@pytest.fixture
def backup(worked: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "backups" / "b1"
    dest.parent.mkdir()
    _backup(worked, dest)
    return dest


def test_a_backup_holds_the_store_keys_config_and_originals(worked: Path, backup: Path) -> None:
    manifest = json.loads((backup / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    assert {"state/certdesk.sqlite3", "certdesk.toml", "state/ca/issuing.key.pem",
            "state/ca/root.key.pem", "state/ca/issuing.pem"} <= paths  # fmt: skip
    assert any(p.startswith("state/archive/") for p in paths)
    assert any(p.startswith("state/quarantine/") for p in paths)
    assert not any(p.startswith(("state/work", "outbox", "inbox")) for p in paths)
    assert "state/passphrase" not in paths and manifest["passphrase_included"] is False
    journal = (worked / "outbox" / "journal.csv").read_text().splitlines()
    assert manifest["head_seq"] == len(journal) - 1
    assert manifest["head_hash"] == journal[-1].split(",")[7]  # Hash, then Canale
    assert manifest["counts"]["ANNULLATO"] == 1 and manifest["counts"]["RIFIUTATO"] == 1
    # private: the folder 0700, every file 0600; no -wal or -shm beside the store's copy
    assert backup.stat().st_mode & 0o777 == 0o700
    for path in backup.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    assert sorted(p.name for p in (backup / "state").iterdir() if p.is_file()) == [
        "certdesk.sqlite3"
    ]
    assert "intact" in _backup(worked, backup, "--verify").stdout


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    index = int(len(data) * at)
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def _archived(backup: Path) -> Path:
    return next(p for p in (backup / "state" / "archive").rglob("*") if p.is_file())


_DAMAGE = {
    "store byte": lambda b: _flip(b / "state" / "certdesk.sqlite3"),
    "store header": lambda b: _flip(b / "state" / "certdesk.sqlite3", 0.00001),
    "key byte": lambda b: _flip(b / "state" / "ca" / "issuing.key.pem"),
    "certificate byte": lambda b: _flip(b / "state" / "ca" / "root.pem"),
    "config byte": lambda b: _flip(b / "certdesk.toml"),
    "archive byte": lambda b: _flip(_archived(b)),
    "manifest byte": lambda b: _flip(b / "manifest.json", 0.3),
    "manifest count": lambda b: (b / "manifest.json").write_text(
        (b / "manifest.json").read_text().replace('"ATTIVATO": 3', '"ATTIVATO": 4')
    ),
    "store missing": lambda b: (b / "state" / "certdesk.sqlite3").unlink(),
    "key missing": lambda b: (b / "state" / "ca" / "issuing.key.pem").unlink(),
    "archive missing": lambda b: _archived(b).unlink(),
    "manifest missing": lambda b: (b / "manifest.json").unlink(),
    "store truncated": lambda b: os.truncate(b / "state" / "certdesk.sqlite3", 4096),
    "archive truncated": lambda b: os.truncate(_archived(b), 10),
    "file added": lambda b: (b / "state" / "ca" / "extra.key.pem").write_text("x"),
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_a_damaged_backup_is_refused_by_verify_and_by_restore(
    backup: Path, tmp_path: Path, damage: str
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged, symlinks=True)
    _DAMAGE[damage](damaged)
    _one_line_error(_backup(tmp_path, damaged, "--verify", check=False), "BACKUP_NON_VALIDO")
    new = tmp_path / "restored"
    result = run_certdesk(new, "restore", str(damaged), check=False)
    _one_line_error(result, "BACKUP_NON_VALIDO")
    assert not new.exists() and not list(tmp_path.glob(".restored*"))


def test_a_restore_is_the_same_ca_and_issues_on(
    worked: Path, backup: Path, tmp_path: Path
) -> None:
    new = tmp_path / "restored"
    new.mkdir()  # an empty folder is fine, as an absent one
    out = run_certdesk(new, "restore", str(backup)).stdout
    assert "restored" in out
    assert "intact" in run_certdesk(new, "verify-ledger").stdout
    for name in ("ledger.csv", "journal.csv"):
        assert (new / "outbox" / name).read_bytes() == (worked / "outbox" / name).read_bytes()
    for cert in (worked / "outbox" / "certs").iterdir():
        assert (new / "outbox" / "certs" / cert.name).read_bytes() == cert.read_bytes()
    for name in ("root.pem", "issuing.pem", "chain.pem"):
        assert (new / "outbox" / "ca" / name).read_bytes() == (
            worked / "outbox" / "ca" / name
        ).read_bytes()
    assert (new / "outbox" / "ca" / "issuing.crl").exists()
    # the cancelled certificate's OCSP response at once; the 3 valid ones are left to the
    # daemon's idle work (tryLater meanwhile), as for certificates just issued
    cancelled = next(r for r in ledger_rows(new) if r["Stato"] == "ANNULLATO")
    (only,) = (new / "outbox" / "ocsp").iterdir()
    assert only.name.lower().startswith(cancelled["Seriale"].lower()), only.name
    before = {r["IdOperazione"] for r in ledger_rows(worked)}
    drop(new, "after.csr", make_csr(9))
    run_certdesk(new, "watch", "--once", "--workers", "1")
    added = [r for r in ledger_rows(new) if r["IdOperazione"] not in before]
    assert len(added) == 1 and added[0]["Stato"] == "ATTIVATO"
    assert added[0]["IdOperazione"] > max(before)
    assert len(list((new / "outbox" / "ocsp").iterdir())) == 5  # the daemon signed the rest


def _crl_number(path: Path) -> int:
    from cryptography import x509

    crl = x509.load_der_x509_crl(path.read_bytes())
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_restored_crl_numbers_pass_every_number_the_lost_machine_published(
    worked: Path, backup: Path, tmp_path: Path
) -> None:
    """After the backup the lost machine files annullamenti, each a CRL with a higher
    number than the backup knew; the restored CA's CRLs still number above them all
    (RFC 5280 §5.2.3), and keep increasing."""
    crl = worked / "outbox" / "ca" / "issuing.crl"
    at_backup = _crl_number(crl)
    for row in [r for r in ledger_rows(worked) if r["Stato"] == "ATTIVATO"][:2]:
        run_certdesk(worked, "cancel", "--codice-fiscale", row["CodiceFiscale"],
                     "--id-operazione", row["IdOperazione"], "--motivazione",
                     "ATTIVITA_CESSATA")  # fmt: skip
        run_certdesk(worked, "watch", "--once", "--workers", "1")
    lost = _crl_number(crl)
    assert lost >= at_backup + 2  # published after the backup, lost with the disk
    new = tmp_path / "restored"
    run_certdesk(new, "restore", str(backup))
    restored = _crl_number(new / "outbox" / "ca" / "issuing.crl")
    assert restored > lost
    assert restored > int(time.time() * 1000) - 600_000  # the restore's time, in ms
    run_certdesk(new, "republish")
    assert _crl_number(new / "outbox" / "ca" / "issuing.crl") > restored


def test_restore_refuses_a_home_that_is_not_empty(backup: Path, worked: Path) -> None:
    _one_line_error(run_certdesk(worked, "restore", str(backup), check=False), "HOME_NON_VUOTA")


@pytest.mark.parametrize("where", ["outbox", "inbox", "state", "outbox/certs"])
def test_backup_refuses_a_destination_inside_the_home(worked: Path, where: str) -> None:
    result = _backup(worked, worked / where / "b", check=False)
    _one_line_error(result, "DESTINAZIONE_NON_VALIDA")
    assert not (worked / where / "b").exists()


def test_backup_never_writes_over_an_existing_destination(worked: Path, backup: Path) -> None:
    before = (backup / "manifest.json").read_bytes()
    _one_line_error(_backup(worked, backup, check=False), "DESTINAZIONE_NON_VALIDA")
    assert (backup / "manifest.json").read_bytes() == before


def test_the_passphrase_travels_only_when_asked(worked: Path, tmp_path: Path) -> None:
    secret = worked / "state" / "passphrase"
    secret.write_text(PASSPHRASE)
    secret.chmod(0o600)
    without, carrying = tmp_path / "without", tmp_path / "with"
    _backup(worked, without)
    _backup(worked, carrying, "--include-passphrase")
    assert not (without / "state" / "passphrase").exists()
    assert (carrying / "state" / "passphrase").read_text() == PASSPHRASE
    no_env = {k: v for k, v in os.environ.items() if k != "CERTDESK_CA_PASSPHRASE"}
    result = subprocess.run(
        [*CLI, "--home", str(tmp_path / "n1"), "restore",
         str(without)], capture_output=True, text=True, env=no_env,
    )  # fmt: skip
    _one_line_error(result, "PASSPHRASE_MANCANTE")
    assert not (tmp_path / "n1").exists()
    result = subprocess.run(
        [*CLI, "--home", str(tmp_path / "n2"), "restore",
         str(carrying)], capture_output=True, text=True, env=no_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_backup_killed_half_way_leaves_no_destination(worked: Path, tmp_path: Path) -> None:
    """A real SIGKILL while the originals are copied (a large one keeps it busy)."""
    claim = worked / "state" / "archive" / "big-claim"
    claim.mkdir(mode=0o700)
    with open(claim / "big.csr", "wb") as fh:
        for _ in range(192):
            fh.write(b"\0" * (1 << 20))
    dest = tmp_path / "killed"
    env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [*CLI, "--home", str(worked), "backup", str(dest)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    partial = tmp_path / ".killed.partial"
    wait_for(lambda: (partial / "state" / "certdesk.sqlite3").exists(), 30, "the snapshot")
    wait_for(lambda: (partial / "state" / "archive").exists(), 30, "the originals' copy")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not dest.exists() and partial.exists()
    _backup(worked, dest)  # the next backup to DEST clears the remains and completes
    assert not partial.exists()
    assert "intact" in _backup(worked, dest, "--verify").stdout


def test_a_backup_is_consistent_while_another_connection_writes(
    worked: Path, tmp_path: Path
) -> None:
    """The snapshot is one instant of the store even while a writer commits meanwhile."""
    conn = sqlite3.connect(worked / "state" / "certdesk.sqlite3", isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    try:
        dest = tmp_path / "b"
        proc = subprocess.Popen(
            [*CLI, "--home", str(worked), "backup", str(dest)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            # a write the daemon could make at any moment: it never waits on the backup
            started = time.monotonic()
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('probe', ?)", (str(started),))
            assert time.monotonic() - started < 1.0
        assert proc.wait(60) == 0
    finally:
        conn.close()
    assert "intact" in _backup(worked, dest, "--verify").stdout


@requires_softhsm
def test_a_token_home_backs_up_labels_only_and_restore_checks_the_token(
    token: Token, tmp_path: Path
) -> None:
    home = pkcs11_home(tmp_path / "home", token)
    run_certdesk(home, "init", "--keys", "pkcs11", env=token.env)
    drop(home, "t.csr", make_csr(1))
    run_certdesk(home, "watch", "--once", "--workers", "1", env=token.env)
    dest = tmp_path / "b"
    _backup(home, dest, env=token.env)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["keys"]["provider"] == "pkcs11"
    assert manifest["keys"]["token_label"] == token.label
    assert {"root_key_label", "issuing_key_label"} <= set(manifest["keys"])
    for path in dest.rglob("*"):
        if path.is_file() and path.name != "certdesk.sqlite3":
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert not any("key" in f["path"] for f in manifest["files"])
    # the token holds the keys: the restore proves them with a signature and republishes
    run_certdesk(tmp_path / "same", "restore", str(dest), env=token.env)
    assert "intact" in run_certdesk(tmp_path / "same", "verify-ledger").stdout
    # a token that no longer holds the keys: refused, nothing made
    import pkcs11

    with open_token(token).open(user_pin=token.pin, rw=True) as session:
        private = {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}
        for key in list(session.get_objects(private)):
            key.destroy()
    result = run_certdesk(tmp_path / "elsewhere", "restore", str(dest), check=False, env=token.env)
    _one_line_error(result, "TOKEN_NON_DISPONIBILE")
    assert not (tmp_path / "elsewhere").exists()


def test_a_pack_deleted_by_retention_during_the_backup_is_restored_as_deleted(
    worked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention marks a pack's originals pruned, then deletes the pack; a backup whose
    snapshot came before both and whose copy came after finds no pack: the restored home
    says ORIGINALE_ELIMINATO for those originals, never a file that vanished."""
    from certdesk import backup as backup_module
    from certdesk.home import Home

    accepted = next(r for r in ledger_rows(worked) if r["Stato"] == "ANNULLATO")
    packs = sorted((worked / "state" / "archive").glob("*.pack"))
    assert packs, "the originals are in day packs"
    copy_files = backup_module._copy_files

    def retention_meanwhile(home: Home, work: Path) -> object:
        store = sqlite3.connect(home.database)
        with store:
            store.execute("UPDATE originals SET pruned = '2026-12-01T00:00:00Z'"
                          " WHERE pack LIKE 'archive/%'")
        store.close()
        for pack in packs:
            pack.unlink()
        return copy_files(home, work)

    monkeypatch.setattr(backup_module, "_copy_files", retention_meanwhile)
    dest = tmp_path / "b"
    backup_module.take_backup(Home.at(worked), dest)
    monkeypatch.undo()
    assert "intact" in _backup(worked, dest, "--verify").stdout
    restored = tmp_path / "restored"
    run_certdesk(restored, "restore", str(dest))
    result = run_certdesk(restored, "archivio", accepted["IdOperazione"], check=False)
    _one_line_error(result, "ORIGINALE_ELIMINATO")


def test_requests_caught_in_generazione_are_signed_by_the_restore_with_new_serials(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup whose snapshot holds requests accepted but not signed (a daemon between
    its two commits, or stopped by a fault of the machine): the lost machine may have
    signed them with their reserved serials, so the restore signs them with new ones,
    and the restored ledger lists settled requests only (verify-ledger intact)."""
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    pending = leave_in_generazione(home, {f"p{n}.csr": make_csr(30 + n) for n in range(3)})
    reserved = {r.id_operazione: r.seriale for r in pending}
    assert len(reserved) == 3 and all(reserved.values())
    dest = tmp_path / "b"
    _backup(home, dest)
    assert json.loads((dest / "manifest.json").read_text())["counts"]["IN_GENERAZIONE"] == 3
    new = tmp_path / "restored"
    run_certdesk(new, "restore", str(dest))
    assert "intact" in run_certdesk(new, "verify-ledger").stdout
    rows = {r["IdOperazione"]: r for r in ledger_rows(new)}
    for id_op, serial in reserved.items():
        assert rows[id_op]["Stato"] == "ATTIVATO" and rows[id_op]["Seriale"] != serial
        assert (new / "outbox" / "certs" / f"{id_op}.pem").exists()


def test_a_store_older_than_the_packs_is_backed_up_as_it_is(worked: Path, tmp_path: Path) -> None:
    """A home upgraded but not yet opened by the new daemon (its store without the
    originals' table, at version 5): the backup takes it as it is, whole."""
    conn = sqlite3.connect(worked / "state" / "certdesk.sqlite3")
    with conn:
        conn.execute("DROP TABLE originals")
        conn.execute("PRAGMA user_version = 5")
    conn.close()
    dest = tmp_path / "old"
    _backup(worked, dest)
    assert "intact" in _backup(worked, dest, "--verify").stdout
