"""Hostile inputs fed to a live ``certdesk watch`` process: each gets one coded receipt,
none blocks, crashes or misleads the daemon, no secret leaks, and a valid request
dropped afterwards is still served."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

import pytest
from archive_support import assert_packs_private, kept_by_name
from daemon_support import (
    DaemonProcess,
    bytes_read,
    make_csr,
    private_key_pem,
    receipt_path,
    wait_receipt,
)

from conftest import assert_kept_privately, drop, run_certdesk

MB = 1024 * 1024


def _files_under(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


def test_hostile_inputs_on_a_live_daemon(home: Path, tmp_path: Path) -> None:
    inbox = home / "inbox"
    secret_token = f"TOP-SECRET-{secrets.token_hex(16)}"
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{secret_token}\n")
    key_pem = private_key_pem(900)
    key_lines = [line for line in key_pem.splitlines() if line and b"-----" not in line]
    expected: dict[str, set[str]] = {}  # recorded file name -> acceptable error codes

    with DaemonProcess(home) as daemon:
        # Links are never followed, whatever they point to.
        (inbox / "link-to-secret.csr").symlink_to(secret)
        (inbox / "dangling.csr").symlink_to(tmp_path / "nowhere")
        expected |= {"link-to-secret.csr": {"INPUT_LINK_SIMBOLICO"}}
        expected |= {"dangling.csr": {"INPUT_LINK_SIMBOLICO"}}
        # A FIFO with no writer would block a reader forever.
        os.mkfifo(inbox / "pipe.csr")
        expected["pipe.csr"] = {"INPUT_NON_REGOLARE"}
        try:  # a device node: only root may create one
            os.mknod(inbox / "device.csr", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            expected["device.csr"] = {"INPUT_NON_REGOLARE"}
        except PermissionError:
            pass
        (inbox / "folder.csr").mkdir()
        (inbox / "folder.csr" / "inner.csr").write_text(secret_token)
        expected["folder.csr"] = {"INPUT_CARTELLA"}
        # Private keys dropped by mistake, whatever their name says.
        for name in ("my-key.csr", "my-key.pem", "my-key.json"):
            drop(home, name, key_pem)
            expected[name] = {"CHIAVE_PRIVATA_RICEVUTA"}
        # Malformed content.
        drop(home, "empty.csr", b"")
        expected["empty.csr"] = {"FILE_VUOTO"}
        drop(home, "garbage.csr", os.urandom(3000))
        expected["garbage.csr"] = {"CSR_NON_LEGGIBILE"}
        # Nesting that exhausts Python's recursion limit in json.loads.
        drop(home, "nested.json", b"[" * 60_000)
        expected["nested.json"] = {"JSON_NON_VALIDO", "ERRORE_INTERNO"}
        # 50 MB written in place (the secret at its end): refused, not read.
        read_before = bytes_read(daemon.pid)
        with open(inbox / "huge.csr", "wb") as big:
            chunk = b"A" * MB
            for _ in range(50):
                big.write(chunk)
            big.write(secret_token.encode())
        expected["huge.csr"] = {"FILE_TROPPO_GRANDE"}
        assert wait_receipt(home, "huge.csr", timeout=30)["esito"] == "KO"
        assert bytes_read(daemon.pid) - read_before < 5 * MB

        # Names: valid requests under names that are hard on shells, logs and URLs.
        odd_names = {
            "new\nline.csr": "new\nline.csr",
            "àccénti ünicode €.csr": "àccénti ünicode €.csr",
            "spazi nel nome.csr": "spazi nel nome.csr",
            "-dash.csr": "-dash.csr",
            "x" * 246 + ".csr": "x" * 246 + ".csr",
        }
        for n, name in enumerate(odd_names):
            drop(home, name, make_csr(910 + n))
        # A name that is not UTF-8 is recorded with the bad byte written as \xe9.
        with open(os.fsencode(inbox) + b"/.latin1.tmp", "wb") as fh:
            fh.write(make_csr(920))
        os.rename(os.fsencode(inbox) + b"/.latin1.tmp", os.fsencode(inbox) + b"/latin1-\xe9.csr")
        odd_names["latin1-\\xe9.csr"] = "latin1-\\xe9.csr"

        # After all that, the daemon still serves a valid request.
        drop(home, "valid-after.csr", make_csr(930))
        assert wait_receipt(home, "valid-after.csr")["esito"] == "OK"
        got = {name: wait_receipt(home, name) for name in [*expected, *odd_names]}
        assert daemon.stop() == 0
    log = daemon.log()

    for name, codes in expected.items():
        assert got[name]["file"] == name
        assert got[name]["esito"] == "KO", (name, got[name])
        assert {e["codice"] for e in got[name]["errori"]} <= codes, (name, got[name])
        assert len(got[name]["errori"]) == 1
    for name, recorded in odd_names.items():
        assert got[name]["esito"] == "OK", (name, got[name])
        assert got[name]["file"] == recorded
        assert "/" not in receipt_path(home, name).name
        assert len(receipt_path(home, name).name.encode()) <= 255
    # Exactly one receipt per input, and nothing else.
    receipt_files = sorted(p.name for p in (home / "outbox" / "receipts").iterdir())
    assert receipt_files == sorted({receipt_path(home, n).name for n in [*got, "valid-after.csr"]})

    # Nothing was followed, copied or echoed.
    assert secret.read_text() == f"{secret_token}\n"
    everything = [*_files_under(home / "outbox")]
    for path in everything:
        data = path.read_bytes()
        assert secret_token.encode() not in data, path
        assert not any(line in data for line in key_lines), path
        assert b"PRIVATE KEY-----" not in data, path
    assert secret_token not in log
    assert not any(line.decode() in log for line in key_lines)
    assert "PRIVATE KEY-----" not in log

    # Rejected inputs are kept, privately (0600 packs, 0700 folders), as they were
    # dropped; what is not a file of its own is kept as it came, in a folder.
    quarantine = home / "state" / "quarantine"
    kept = kept_by_name(home)
    for name in ("my-key.csr", "my-key.pem", "my-key.json"):
        assert kept[name].packed and kept[name].quarantined
        assert kept[name].data == key_pem
    assert_packs_private(home)
    (link,) = quarantine.glob("*/link-to-secret.csr")
    assert_kept_privately(link)
    assert link.is_symlink() and os.readlink(link) == str(secret)
    (pipe,) = quarantine.glob("*/pipe.csr")
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    with pytest.raises(OSError) as nobody_reads:  # no process holds the FIFO open
        os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    assert nobody_reads.value.errno == errno.ENXIO
    assert os.listdir(inbox) == [] and os.listdir(home / "state" / "work") == []

    # One log line per input, however its name is made.
    outcome_lines = [line for line in log.splitlines() if " esito=" in line]
    assert len(outcome_lines) == len(got) + 1
    assert any('"new\\nline.csr"' in line for line in outcome_lines)
    assert "Traceback" not in log or "nested.json" in log  # only the recursion bomb
    run_certdesk(home, "verify-ledger")
