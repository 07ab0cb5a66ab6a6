"""The daemon's options: its command-line arguments, and the timings and limits
``certdesk watch`` fills from them and from ``certdesk.toml``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DaemonOptions", "add_watch_arguments"]


@dataclass(frozen=True)
class DaemonOptions:
    once: bool = False
    polling: bool = False
    rescan_seconds: float = 2.0
    settle_seconds: float = 0.5
    heartbeat_seconds: float = 2.0
    progress: bool = False
    # A file opened for writing (inotify) is taken anyway after this long without change:
    # a lost close event or a writer that never closes must not hold it forever.
    write_timeout_seconds: float = 60.0
    # During a long backlog, expiry and CRL work still runs this often (OCSP waits for idle).
    # Also how long idle work rests after it failed.
    busy_periodic_seconds: float = 60.0
    # After a failure the store could not even record, recovery is retried this often.
    recovery_retry_seconds: float = 10.0
    # Below this much free space (plus ledger.csv's size) nothing new is claimed.
    min_free_bytes: int = 64 * 2**20
    # While paused, whether the fault is gone is tried this often.
    pause_retry_seconds: float = 2.0
    # During a backlog, outbox/ledger.parquet/ is brought up to the store this often (when
    # idle, at once): the panels and analysts are never further behind.
    columnar_seconds: float = 3.0


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="process the backlog, then exit")
    parser.add_argument("--polling", action="store_true", help="poll (network file systems)")
    parser.add_argument("--workers", type=int, default=None, help="signing processes")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--passphrase-file", type=Path)
    parser.add_argument("--rescan-seconds", type=float, default=None)
    parser.add_argument(
        "--init-if-missing", action="store_true", help="create the CA on first use (make run)"
    )
