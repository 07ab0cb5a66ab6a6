"""Operating the daemon: signals, log lines, the heartbeat, the progress bar, the unit."""

from __future__ import annotations

import configparser
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_support import (
    CLI,
    DaemonProcess,
    configure,
    heartbeat,
    make_csr,
    receipts,
    wait_for,
    wait_receipt,
)

from conftest import PASSPHRASE, REPO, drop, run_certdesk

UNIT = REPO / "lib" / "certdesk" / "daemon" / "certdesk.service"


def _backlog(home: Path, count: int) -> list[str]:
    names = [f"backlog-{n:03d}.csr" for n in range(count)]
    for n, name in enumerate(names):
        drop(home, name, make_csr(200 + n % 40, n // 40))
    return names


# -- SIGTERM / SIGINT ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sig", "group", "workers"),
    [(signal.SIGTERM, False, 1), (signal.SIGINT, True, 2)],
    ids=["SIGTERM-to-the-daemon", "Ctrl-C-to-the-process-group"],
)
def test_a_signal_finishes_the_batch_in_hand_and_exits_0(
    home: Path, sig: signal.Signals, group: bool, workers: int
) -> None:
    configure(home, rescan_seconds=0.5, settle_seconds=0.1, batch_size=8)
    names = _backlog(home, 200)
    daemon = DaemonProcess(home, workers=workers).start()
    try:
        wait_for(lambda: receipts(home), 30, "the first receipt")
        sent = time.monotonic()
        daemon.signal(sig, group=group)
        assert daemon.wait(timeout=10) == 0, daemon.log()
        took = time.monotonic() - sent
    finally:
        daemon.close()
    assert took < 5, f"the daemon took {took:.1f} s to stop"
    # Stopped in the middle of the backlog, and nothing half-done: every input is either
    # answered or still untouched in inbox/.
    done, waiting = receipts(home), os.listdir(home / "inbox")
    assert waiting, "the whole backlog was done before the signal: nothing was tested"
    assert len(done) + len(waiting) == len(names)
    assert os.listdir(home / "state" / "work") == []
    assert all(r["esito"] == "OK" for r in done.values()), done  # no broken signing pool
    assert len(list((home / "outbox" / "certs").glob("*.pem"))) == len(done)
    assert heartbeat(home)["state"] == "stopped"
    assert "Traceback" not in daemon.log()
    run_certdesk(home, "verify-ledger")


# -- log lines ----------------------------------------------------------------------------
def test_json_log_one_line_per_input(home: Path) -> None:
    drop(home, "ok.csr", make_csr(300))
    drop(home, "two\nlines.csr", make_csr(301))
    drop(home, "refused.csr", b"not a request")
    done = run_certdesk(home, "watch", "--once", "--workers", "1", "--log-format", "json")
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line parses
    outcomes = {line["file"]: line for line in lines if "esito" in line}
    assert set(outcomes) == {"ok.csr", "two\nlines.csr", "refused.csr"}
    assert len([line for line in lines if "esito" in line]) == 3
    ok = outcomes["ok.csr"]
    assert ok["esito"] == "OK" and ok["tipo"] == "richiesta" and ok["level"] == "info"
    assert ok["id_operazione"] == wait_receipt(home, "ok.csr")["id_operazione"]
    assert outcomes["refused.csr"]["esito"] == "KO"
    assert outcomes["refused.csr"]["codice"] == wait_receipt(home, "refused.csr")["errori"][0][
        "codice"
    ]
    assert {"time", "logger", "message"} <= set(ok)


def test_text_log_one_line_per_input(home: Path) -> None:
    drop(home, "ok.csr", make_csr(302))
    drop(home, "two\nlines.csr", make_csr(303))
    done = run_certdesk(home, "watch", "--once", "--workers", "1")
    outcome_lines = [line for line in done.stderr.splitlines() if " esito=" in line]
    assert len(outcome_lines) == 2
    (ok,) = [line for line in outcome_lines if '"ok.csr"' in line]
    receipt = wait_receipt(home, "ok.csr")
    assert f"esito=OK id_operazione={receipt['id_operazione']} codice=-" in ok
    assert any('"two\\nlines.csr"' in line for line in outcome_lines)


# -- the heartbeat ------------------------------------------------------------------------
def test_heartbeat_is_refreshed_and_says_stopped(home: Path) -> None:
    with DaemonProcess(home) as daemon:
        first = heartbeat(home)
        assert first["pid"] == daemon.pid and first["state"] == "running"
        assert first["version"] and first["started"] and first["heartbeat_seconds"] <= 5
        updates = {first["updated"]}
        wait_for(
            lambda: updates.add(heartbeat(home).get("updated", "")) or len(updates) >= 3,
            timeout=4 * first["heartbeat_seconds"] + 5,
            message="two refreshes of outbox/daemon.json",
        )
        drop(home, "counted.csr", make_csr(304))
        wait_receipt(home, "counted.csr")
        wait_for(lambda: heartbeat(home)["counts"]["input"] == 1, 30, "the count")
        beat = heartbeat(home)
        assert beat["counts"]["ok"] == 1 and beat["counts"]["ko"] == 0
        assert beat["last_scan"] and beat["inbox"] == 0
        assert daemon.stop() == 0
    last = heartbeat(home)
    assert last["state"] == "stopped"
    text = (home / "outbox" / "daemon.json").read_text()
    assert PASSPHRASE not in text and "PRIVATE" not in text
    assert set(last) <= {
        "pid", "host", "version", "state", "started", "updated", "last_scan",
        "heartbeat_seconds", "inbox", "counts", "pausa", "avvisi",
    }
    assert last["pausa"] is None


# -- the progress bar ----------------------------------------------------------------------
def test_watch_once_on_a_terminal_shows_a_progress_bar(home: Path) -> None:
    names = _backlog(home, 30)
    controller, terminal = pty.openpty()
    env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [*CLI, "--home", str(home), "watch", "--once", "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal, env=env,
    )
    os.close(terminal)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        assert proc.wait(60) == 0
    text = shown.decode("utf-8", "replace")
    assert f"{len(names)}/{len(names)}" in text and "100%" in text
    assert "[" + "#" * 30 + "]" in text
    # Log lines are not mixed into the bar: each starts on a line of its own.
    assert all(line.count(" esito=") <= 1 for line in text.splitlines())
    # Not on a terminal: no bar.
    drop(home, "quiet.csr", make_csr(305))
    quiet = run_certdesk(home, "watch", "--once", "--workers", "1")
    assert "#" not in quiet.stderr and "\r" not in quiet.stderr


def test_python_dash_m_certdesk_daemon(home: Path) -> None:
    drop(home, "via-module.csr", make_csr(306))
    env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-m", "certdesk.daemon", "--home", str(home), "--once", "--workers", "1"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert wait_receipt(home, "via-module.csr")["esito"] == "OK"


# -- the systemd unit ----------------------------------------------------------------------
def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_systemd_unit_is_hardened() -> None:
    unit = _unit()
    service = unit["Service"]
    assert "watch" in service["ExecStart"] and "--log-format json" in service["ExecStart"]
    home = service["ExecStart"].split("--home ")[1].split()[0]
    assert home in service["ReadWritePaths"].split()
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "PrivateDevices": "yes",
        "PrivateNetwork": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "KillMode": "mixed",
        "KillSignal": "SIGTERM",
    }
    for key, value in hardening.items():
        assert service.get(key) == value, key
    assert service["CapabilityBoundingSet"] == ""
    assert service["User"] and service["User"] != "root"
    assert "CERTDESK_CA_PASSPHRASE" not in UNIT.read_text()  # a credential, not the env
    assert "LoadCredential" in service and "%d/" in service["ExecStart"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    certdesk = shutil.which("certdesk") or str(Path(sys.executable).with_name("certdesk"))
    if analyze is None or not Path(certdesk).exists():
        pytest.skip("systemd-analyze or the certdesk script is not available")
    # The unit as installed here: this checkout's certdesk, a temporary home, this user.
    text = UNIT.read_text().replace("/opt/certdesk/.venv/bin/certdesk", certdesk)
    text = text.replace("/srv/certdesk", str(tmp_path))
    user = os.environ.get("USER") or "root"
    text = text.replace("User=certdesk", f"User={user}").replace("Group=certdesk", "")
    unit = tmp_path / "certdesk.service"
    unit.write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "certdesk.service" not in done.stderr, done.stderr  # no warning about our unit
