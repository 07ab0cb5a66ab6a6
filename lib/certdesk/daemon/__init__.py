"""certdesk's watched-folder daemon: ``python -m certdesk.daemon`` or ``certdesk watch``."""

from __future__ import annotations

from .lock import holding_lock
from .main import run_daemon, watch
from .options import DaemonOptions
from .watcher import Daemon

__all__ = ["Daemon", "DaemonOptions", "holding_lock", "run_daemon", "watch"]
