"""``certdesk run`` (what ``make run`` starts): the daemon and the publication service in
the foreground, the URLs printed at start, stopping together on SIGTERM or Ctrl-C (and
when the service dies); a taken port stops it before the daemon starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import CLI, heartbeat, make_csr, processes_mentioning, wait_for, wait_receipt
from serve_support import free_port, http_request, ocsp_request, ocsp_status

from conftest import drop

FAST_CA = '[ca]\nroot_key = "rsa2048"\nissuing_key = "rsa2048"\n'


class Run:
    """``certdesk run --init-if-missing`` on a home, as make run starts it (no passphrase
    in the environment: the first start generates one)."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.log_path = home.parent / "run.log"
        env = {k: v for k, v in os.environ.items() if k != "CERTDESK_CA_PASSPHRASE"}
        env.update(extra_env or {})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*CLI, "--home", str(home), "run", "--init-if-missing", "--workers", "1"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_running(self) -> None:
        def running() -> bool:
            assert self.proc.poll() is None, self.log()
            return heartbeat(self.home).get("state") == "running"

        wait_for(running, 60, "certdesk run's daemon to run")

    def service_pids(self) -> list[int]:
        return [pid for pid in processes_mentioning(str(self.home)) if _is_serve(pid)]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in processes_mentioning(str(self.home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _is_serve(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"\0serve\0" in fh.read()
    except OSError:
        return False


@pytest.fixture
def fresh_home(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A home with no CA yet, whose certificates name a free port."""
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    (home / "certdesk.toml").write_text(
        FAST_CA + f'[daemon]\nrescan_seconds = 0.5\n[publish]\nlisten = "127.0.0.1:{port}"\n'
    )
    yield home, port


def test_run_creates_the_ca_serves_and_stops_together_on_sigterm(
    fresh_home: tuple[Path, int],
) -> None:
    home, port = fresh_home
    run = Run(home)
    try:
        run.wait_running()
        said = run.log()
        for path in ("/ocsp", "/ca/issuing.crl", "/ca/issuing.cer", "/ca/root.cer", "/health"):
            assert f"http://127.0.0.1:{port}{path}" in said
        assert "an address of this machine only" in said  # the loopback warning
        drop(home, "my.csr", make_csr(30))
        receipt = wait_receipt(home, "my.csr", timeout=30)
        cert = home / "outbox" / "certs" / receipt["certificato"]
        der = ocsp_request(home / "outbox" / "ca" / "issuing.pem", "-cert", str(cert))

        def good() -> bool:
            reply = http_request(port, "POST", "/ocsp", der,
                                 Content_Type="application/ocsp-request")  # fmt: skip
            return ocsp_status(reply.body) == "GOOD"

        wait_for(good, 30, "the certificate's OCSP answer", interval=0.05)
        assert len(run.service_pids()) == 1
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(30) == 0, run.log()
        assert run.service_pids() == [] and processes_mentioning(str(home)) == []
        assert heartbeat(home).get("state") == "stopped"
    finally:
        run.close()


def test_ctrl_c_stops_both(fresh_home: tuple[Path, int]) -> None:
    home, _port = fresh_home
    run = Run(home)
    try:
        run.wait_running()
        os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert run.proc.wait(30) == 0, run.log()
        assert processes_mentioning(str(home)) == []
    finally:
        run.close()


def test_a_service_that_dies_stops_the_daemon(fresh_home: tuple[Path, int]) -> None:
    home, _port = fresh_home
    run = Run(home)
    try:
        run.wait_running()
        (service,) = run.service_pids()
        os.kill(service, signal.SIGKILL)
        assert run.proc.wait(30) != 0
        assert "the publication service stopped" in run.log()
        assert processes_mentioning(str(home)) == []
    finally:
        run.close()


def test_the_service_does_not_outlive_a_killed_run(fresh_home: tuple[Path, int]) -> None:
    """kill -9 of ``certdesk run`` alone (not its group): the service goes too, and frees
    the port for the next ``make run``; an orphan would keep it (ASCOLTO_NON_DISPONIBILE)."""
    home, port = fresh_home
    run = Run(home)
    try:
        run.wait_running()
        (service,) = run.service_pids()
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait(10)
        wait_for(lambda: not _is_serve(service), 30, "the orphaned service to stop")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # the port is free again
    finally:
        run.close()


def test_a_taken_port_stops_run_before_the_daemon_starts(fresh_home: tuple[Path, int]) -> None:
    home, port = fresh_home
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        run = Run(home)
        try:
            assert run.proc.wait(60) == 1
        finally:
            run.close()
    assert "ASCOLTO_NON_DISPONIBILE" in run.log() and "Traceback" not in run.log()
    assert heartbeat(home) == {}  # the daemon never started


# -- the systemd unit beside the daemon's -----------------------------------------------------
UNIT = Path(__file__).resolve().parents[1] / "lib/certdesk/daemon/certdesk-serve.service"


def test_the_serve_unit_gets_no_secret_and_sees_only_outbox() -> None:
    text = UNIT.read_text()
    assert "serve" in text.split("ExecStart=")[1].splitlines()[0]
    assert "LoadCredential" not in text and "passphrase" not in text.lower().split("[unit]")[1]
    assert "BindReadOnlyPaths=/srv/certdesk/outbox" in text and "ReadWritePaths" not in text
    assert "User=certdesk-web" in text  # not the daemon's user


def test_systemd_analyze_verifies_the_serve_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    certdesk = shutil.which("certdesk") or str(Path(sys.executable).with_name("certdesk"))
    if analyze is None or not Path(certdesk).exists():
        pytest.skip("systemd-analyze or the certdesk script is not available")
    (tmp_path / "outbox").mkdir()
    user = os.environ.get("USER") or "root"
    text = UNIT.read_text().replace("/opt/certdesk/.venv/bin/certdesk", certdesk)
    for installed, here in (("/srv/certdesk", str(tmp_path)), ("User=certdesk-web", f"User={user}"),
                            ("Group=certdesk-web", ""), ("SupplementaryGroups=certdesk", "")):
        text = text.replace(installed, here)
    unit = tmp_path / "certdesk-serve.service"
    unit.write_text(text)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "certdesk-serve.service" not in done.stderr, done.stderr


def _environment(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        pairs = [item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def test_the_service_gets_neither_the_passphrase_nor_the_pin(
    fresh_home: tuple[Path, int],
) -> None:
    """The publication service signs nothing: the CA's passphrase and the token's PIN,
    given to ``certdesk run``, never reach its environment (keys.SECRET_VARIABLES)."""
    home, _port = fresh_home
    secrets = {"CERTDESK_CA_PASSPHRASE": "passphrase-of-this-test-only",
               "CERTDESK_PKCS11_PIN": "246810"}
    run = Run(home, extra_env=secrets)
    try:
        run.wait_running()
        (service,) = run.service_pids()
        assert secrets.items() <= _environment(run.proc.pid).items()  # run had them
        seen = _environment(service)
        assert not set(secrets) & set(seen), sorted(set(secrets) & set(seen))
        assert seen  # the environment was read: the test could have seen them
    finally:
        run.close()
