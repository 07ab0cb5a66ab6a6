"""Helpers for the daemon tests: valid CSRs in bulk, a daemon in a subprocess or a thread,
and waiting on conditions with a deadline (never a bare sleep as synchronisation)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from stdnum.it import codicefiscale

from certdesk.daemon import Daemon, DaemonOptions
from certdesk.home import Home
from certdesk.names import safe_name
from certdesk.runtime import open_engine
from conftest import PASSPHRASE

CLI = [sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())"]
_MONTHS = "ABCDEHLMPRST"


def wait_for(
    condition: Callable[[], Any], timeout: float = 30.0, message: str = "", interval: float = 0.02
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds
    (a failure's bound, never a measure: CI's machines are shared and slow at times)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(interval)


# -- requests ------------------------------------------------------------------------
def crash_seed() -> random.Random:
    """The random source of a kill -9 test: ``CERTDESK_CRASH_SEED`` replays a run, else a
    new seed, printed so that a failing run can be replayed."""
    seed = int(os.environ.get("CERTDESK_CRASH_SEED", time.time_ns() % 1_000_000))
    print(f"CERTDESK_CRASH_SEED={seed}")
    return random.Random(seed)


def codice_fiscale(n: int) -> str:
    """The n-th of 33,600 distinct valid personal codici fiscali."""
    day = n % 28 + 1
    month = _MONTHS[(n // 28) % 12]
    year = (n // 336) % 100
    prefix = f"RSSMRA{year:02d}{month}{day:02d}H501"
    return prefix + codicefiscale.calc_check_digit(prefix)


@functools.cache
def rsa_key(n: int) -> rsa.RSAPrivateKey:
    """The n-th test key, generated once per test session (2048 bits, e = 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(n: int, variant: int = 0, *, common_name: str | None = None) -> bytes:
    """A valid PEM CSR for person ``n`` with key ``n``; each ``variant`` is a new request
    of the same person and key (an extra OU, which the CA does not copy)."""
    cn = common_name if common_name is not None else codice_fiscale(n)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if variant:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"v{variant}"))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .sign(rsa_key(n), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def private_key_pem(n: int) -> bytes:
    return rsa_key(n).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# -- the outbox ------------------------------------------------------------------------
def receipt_path(home: Path, name: str) -> Path:
    return home / "outbox" / "receipts" / f"{safe_name(name)}.json"


def wait_receipt(home: Path, name: str, timeout: float = 30.0) -> dict[str, Any]:
    path = receipt_path(home, name)
    wait_for(path.exists, timeout, f"the receipt of {name!r}")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def certificates(home: Path) -> list[Path]:
    return sorted((home / "outbox" / "certs").glob("*.pem"))


def receipts(home: Path) -> dict[str, dict[str, Any]]:
    """Every receipt by its file name (dot-files, i.e. writes in progress, excluded)."""
    folder = home / "outbox" / "receipts"
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if not p.name.startswith(".")
    }


def heartbeat(home: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads((home / "outbox" / "daemon.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return loaded


def configure(home: Path, **daemon: float | int) -> None:
    """Rewrite the ``[daemon]`` settings of the home's certdesk.toml."""
    path = home / "certdesk.toml"
    kept = []
    skipping = False
    for line in path.read_text().splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == "[daemon]"
        if not skipping:
            kept.append(line)
    kept.append("[daemon]")
    kept += [f"{key} = {value}" for key, value in daemon.items()]
    path.write_text("\n".join(kept) + "\n")


# -- a daemon in a subprocess ----------------------------------------------------------------
class DaemonProcess:
    """``certdesk watch`` in its own session; its stderr (the log) goes to a file."""

    def __init__(self, home: Path, *args: str, workers: int = 1) -> None:
        self.home = home
        self.args = ["--home", str(home), "watch", "--workers", str(workers), *args]
        self.log_path = home.parent / f"{home.name}-daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_running(self, timeout: float = 30.0) -> None:
        def running() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"certdesk watch exited {self.proc.returncode}:\n{self.log()}")
            beat = heartbeat(self.home)
            return beat.get("pid") == self.pid and beat.get("state") == "running"

        wait_for(running, timeout, "the daemon's heartbeat to say running")

    def signal(self, sig: int, *, group: bool = False) -> None:
        if group:
            os.killpg(self.pid, sig)
        else:
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        """Whatever happened, nothing of this daemon survives the test."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # workers left in the session

    def __enter__(self) -> DaemonProcess:
        self.start()
        self.wait_running()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions ``text`` (a test's unique home path)."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if needle in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def bytes_read(pid: int) -> int:
    """``rchar`` of /proc/PID/io: bytes the process asked read(2) and friends for."""
    with open(f"/proc/{pid}/io") as fh:
        for line in fh:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/PID/io")


# -- a daemon in a thread of the test process --------------------------------------------------
#: Timings of a ``ThreadDaemon`` that answers within a second.
QUICK: dict[str, Any] = {
    "rescan_seconds": 0.2,
    "settle_seconds": 0.2,
    "heartbeat_seconds": 0.5,
    "pause_retry_seconds": 0.2,
}


class ThreadDaemon:
    """A real ``Daemon`` (real observer, real engine) in a thread, for white-box tests."""

    def __init__(self, home: Path, **options: Any) -> None:
        # The passphrase comes from CERTDESK_CA_PASSPHRASE: use the passphrase_env fixture.
        self.engine = open_engine(Home.at(home), workers=1)
        self.daemon = Daemon(self.engine, DaemonOptions(**options))
        self.result: list[int] = []
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="certdesk-test-daemon")

    def _run(self) -> None:
        try:
            self.result.append(self.daemon.run())
        except BaseException as exc:  # surfaced by __exit__
            self.error.append(exc)

    def scans_after(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the daemon completed ``count`` more scans of inbox/."""
        target = self.daemon.scans + count
        wait_for(lambda: self.daemon.scans >= target or self.error, timeout, f"{count} scans")

    def __enter__(self) -> ThreadDaemon:
        self.thread.start()
        daemon = self.daemon
        wait_for(
            lambda: self.error or (daemon.scans > 0 and daemon.heartbeat.state == "running"),
            30,
            "the daemon thread to start",
        )
        assert not self.error, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the daemon thread did not stop"
        self.engine.close()
        assert not self.error, self.error
        assert self.result == [0]


@contextlib.contextmanager
def no_leaked_threads() -> Iterator[None]:
    """Fail if threads started inside are still alive shortly after (as watchdog's tests do)."""
    before = set(threading.enumerate())
    yield
    try:
        wait_for(lambda: not (set(threading.enumerate()) - before), 30, "threads to end")
    except AssertionError:
        leaked = ", ".join(sorted(t.name for t in set(threading.enumerate()) - before))
        raise AssertionError(f"leaked threads: {leaked}") from None


def a_random_while(daemon: DaemonProcess, rng: random.Random, low: float, high: float) -> str:
    """A kill moment: a random delay (the daemon never exits by itself: this is the wait)."""
    assert daemon.proc is not None
    delay = rng.uniform(low, high)
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.proc.wait(timeout=delay)
    return f"after {delay:.2f} s"


def kill_at(daemon: DaemonProcess, moment: Callable[[], str], trigger: int) -> str:
    """Wait for ``moment`` (which says what it waited for), then SIGKILL the daemon; a
    moment that never came is said so, and the daemon is killed all the same."""
    try:
        how = moment()
    except AssertionError:
        how = f"trigger {trigger} never came"
    assert daemon.proc is not None and daemon.proc.poll() is None, daemon.log()
    daemon.signal(signal.SIGKILL)
    daemon.wait(10)
    return how
