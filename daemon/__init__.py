"""certdesk's watched-folder daemon: ``python -m certdesk.daemon`` or ``certdesk watch``."""

from __future__ import annotations

from .watcher import Daemon, DaemonOptions, run_daemon

__all__ = ["Daemon", "DaemonOptions", "run_daemon"]
