"""``certdesk run`` (what ``make run`` starts): the daemon and the publication service of
one home together, in the foreground.

The service runs in a child process, ``certdesk serve``: in this process it would share
one interpreter lock with the daemon, which decides, signs and publishes. The order:

1. the CA is created when missing (``--init-if-missing``), so there is one to publish;
2. the service starts and says on a pipe that it listens (its first lines are its URLs);
   when it cannot (the port is taken) ``run`` stops there, before the daemon starts;
3. the daemon runs here, in the foreground (``certdesk watch``);
4. Ctrl-C reaches both (one process group) and each stops; SIGTERM to this process stops
   the daemon, then the service; a service that stops by itself stops the daemon too.
   Either way neither outlives ``run``, not even a ``kill -9`` of it (the service asks
   the kernel for SIGTERM when ``run`` dies: ``workerlife.die_with_parent``).

The child gets no CA passphrase nor token PIN: the service never needs them.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from ..authority import ca_exists
from ..config import load_config
from ..daemon.logs import setup_logging
from ..daemon.main import watch
from ..home import Home
from ..keys import SECRET_VARIABLES
from ..runtime import init_home
from .options import listen_of
from .server import SHUTDOWN_SECONDS

__all__ = ["run"]

log = logging.getLogger("certdesk")

_START_SECONDS = 30.0
# How long a service that stopped cleanly (exit 0) waits for the daemon to stop too (a
# Ctrl-C reaches both) before it stops the daemon itself.
_CTRL_C_GRACE_SECONDS = 5.0


def run(home: Home, args: argparse.Namespace) -> int:
    """The daemon and the publication service of ``home``; the first failure's exit code."""
    setup_logging(args.log_format)
    config = load_config(home.root)
    host, port = listen_of(config, args.listen)
    # Until the daemon installs its own, SIGTERM unwinds this function (its ``finally``
    # stops the service) instead of killing this process alone.
    previous = signal.signal(signal.SIGTERM, _unwind)
    try:
        if args.init_if_missing and not ca_exists(home):
            log.info("no CA in %s: creating one (first use)", home.ca_dir)
            log.info("%s", init_home(home, args.passphrase_file))
        service = _Service(home, f"[{host}]:{port}" if ":" in host else f"{host}:{port}", args)
        try:
            if not service.wait_listening(_START_SECONDS):
                return service.stop() or 1
            code = watch(home, args)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already
            service.stop()
        return service.failure or code
    finally:
        signal.signal(signal.SIGTERM, previous)


def _unwind(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class _Service:
    """``certdesk serve`` in a child process, watched by a thread."""

    def __init__(self, home: Home, listen: str, args: argparse.Namespace) -> None:
        read_end, write_end = os.pipe()
        env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
        command = [
            sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())",
            "--home", str(home.root), "serve", "--listen", listen,
            "--log-format", args.log_format, "--ready-fd", str(write_end),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        try:
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, pass_fds=(write_end,)
            )
        finally:
            os.close(write_end)
        self._ready = read_end
        self._stopping = threading.Event()  # stop() called: the service's end is ours
        self.failure = 0  # the service's exit code when it stopped by itself, failing
        self._watcher = threading.Thread(target=self._watch, name="certdesk-serve-watch")

    def wait_listening(self, timeout: float) -> bool:
        """Whether the service says it listens within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self._ready], [], [], left)
                if readable:
                    said = os.read(self._ready, 64)
                    if said.startswith(b"ready"):
                        self._watcher.start()
                        return True
                    return False  # closed without a word: it failed (and said why)
            log.error("the publication service did not start within %.0f s", timeout)
            return False
        finally:
            os.close(self._ready)

    def _watch(self) -> None:
        code = self.process.wait()
        if self._stopping.is_set():
            return
        if code:
            self.failure = code if code > 0 else 128 - code  # killed by a signal: as sh says
            log.error("the publication service stopped (exit %d): stopping the daemon", code)
        elif self._stopping.wait(_CTRL_C_GRACE_SECONDS):
            # Stopped as asked (exit 0): a Ctrl-C reached the whole group, and the daemon
            # stopped too. A SIGTERM now could reach this process after the daemon gave
            # back its handler, and turn a clean stop into exit 143.
            return
        # The daemon stops on SIGTERM after the batch in hand (daemon.main.run_daemon).
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> int:
        """Stop the service (SIGTERM, then SIGKILL after its shutdown time); its code."""
        self._stopping.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(SHUTDOWN_SECONDS + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._watcher.is_alive():
            self._watcher.join(5)
        return self.process.returncode or 0
