"""certdesk's watched-folder daemon: ``python -m certdesk.daemon`` or ``certdesk watch``."""

from __future__ import annotations

# Imported first, for its effect: worker processes forked from now on (the signer's pool,
# started when the engine opens) die with the daemon instead of outliving a kill -9.
from . import children as _children  # noqa: F401  # isort: skip
from .lock import holding_lock
from .watcher import Daemon, DaemonOptions, run_daemon

__all__ = ["Daemon", "DaemonOptions", "holding_lock", "run_daemon"]
