"""A signing worker lives no longer than the process that forked it, and leaves Ctrl-C to it.

The signer's process pool forks its workers from the daemon (when the engine opens, to
have them warm). Left alone, a forked worker outlives a ``kill -9`` of the daemon: it
stays, orphaned, with the decrypted CA key in memory (found by the crash test). So the
pool's worker initializer (``signing._init_worker``) calls ``bind_to_parent`` first:

- it asks the kernel for SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``;
  strictly, when the forking *thread* ends: the daemon forks from its main thread), and
  exits at once if the parent died between the fork and that request;
- it ignores SIGINT: a Ctrl-C reaches the whole process group, but a worker interrupted in
  the middle of a batch would break the pool; the daemon ends its workers itself (pool
  shutdown) after the batch. SIGTERM gets its default back (a forked child inherits the
  daemon's handler): the pool ends broken workers with it, and the systemd unit signals
  only the daemon (``KillMode=mixed``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["bind_to_parent", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def die_with_parent(parent_pid: int, signum: signal.Signals = signal.SIGKILL) -> None:
    """Have the kernel send ``signum`` to this process when ``parent_pid`` (its parent)
    dies; exit at once if it has died already. Also for ``certdesk serve`` started by
    ``certdesk run`` (SIGTERM: it stops as on any SIGTERM), which would otherwise keep the
    port after a ``kill -9`` of ``run``."""
    prctl = _load_prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died between the fork and the prctl


def bind_to_parent(parent_pid: int) -> None:
    """In a worker, right after the fork: die with ``parent_pid``, ignore Ctrl-C."""
    die_with_parent(parent_pid)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
