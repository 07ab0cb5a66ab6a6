"""``certdesk watch`` and ``python -m certdesk.daemon``: options, lock, engine, loop.

The CLI adds these arguments to its ``watch`` command and calls ``watch``; the daemon
package never imports the CLI.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from certdesk import __version__
from certdesk.codes import refusal
from certdesk.config import load_config
from certdesk.errors import CertdeskError
from certdesk.home import Home
from certdesk.runtime import open_engine
from certdesk.service import Engine

from .lock import holding_lock
from .logs import setup_logging
from .options import DaemonOptions, add_watch_arguments
from .watcher import Daemon

__all__ = ["add_watch_arguments", "run_daemon", "watch"]

log = logging.getLogger("certdesk")


def _options(home: Home, args: argparse.Namespace) -> DaemonOptions:
    config = load_config(home.root)
    if args.workers is not None and args.workers < 1:
        raise refusal("OPZIONE_NON_VALIDA", opzione="--workers", minimo=1)
    rescan_seconds = args.rescan_seconds or config.daemon.rescan_seconds
    return DaemonOptions(
        once=args.once,
        polling=args.polling,
        rescan_seconds=rescan_seconds,
        # Paused by a fault, it looks again as often as it rescans inbox/.
        pause_retry_seconds=rescan_seconds,
        settle_seconds=config.daemon.settle_seconds,
        min_free_bytes=int(config.daemon.min_free_mib * 2**20),
        progress=args.once and sys.stderr.isatty(),
    )


def watch(home: Home, args: argparse.Namespace) -> int:
    """Run the daemon on ``home`` with the parsed ``watch`` arguments; its exit code."""
    setup_logging(args.log_format)
    options = _options(home, args)
    home.ensure()
    # The lock first: a second daemon must refuse before it decrypts the CA key or
    # starts signing workers.
    with holding_lock(home.lock_file):
        engine = open_engine(
            home,
            passphrase_file=args.passphrase_file,
            workers=args.workers,
            init_if_missing=args.init_if_missing,
        )
        if not args.once:
            log.info(
                "certdesk %s watching %s -> %s (Ctrl-C to stop)",
                __version__, home.inbox, home.outbox,
            )  # fmt: skip
        return run_daemon(engine, options)


def run_daemon(engine: Engine, options: DaemonOptions) -> int:
    """Run the daemon in the main thread: SIGTERM/SIGINT stop it after the batch in hand."""
    daemon = Daemon(engine, options)
    previous = {
        sig: signal.signal(sig, daemon.stop) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return daemon.run()
    except CertdeskError as exc:
        print(f"certdesk: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close()
