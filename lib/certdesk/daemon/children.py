"""The daemon's worker processes die with it and leave Ctrl-C to it.

The signer's process pool forks its workers from the daemon (when the engine opens, to
have them warm). Left alone, a forked worker outlives a ``kill -9`` of the daemon: it
stays, orphaned, with the decrypted CA key in memory (found by the crash test). So every
process that ``multiprocessing`` forks in a process that imported ``certdesk.daemon``
(the CLI imports it before it opens the engine), right after the fork:

- asks the kernel for SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``; strictly,
  when the forking *thread* ends: the daemon forks from its main thread);
- ignores SIGINT: a Ctrl-C reaches the whole process group, but a worker interrupted in
  the middle of a batch would break the pool; the daemon ends its workers itself (pool
  shutdown) after the batch. SIGTERM gets its default back (a forked child inherits the
  daemon's handler): the pool ends broken workers with it, and the systemd unit signals
  only the daemon (``KillMode=mixed``).

Only ``multiprocessing`` children are touched (``multiprocessing.util.register_after_fork``),
and only with the ``fork`` start method, the default on Linux before Python 3.14; other
start methods begin a fresh interpreter that never imports this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing.util
import os
import signal
import sys
from collections.abc import Callable

__all__: list[str] = []

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()  # looked up once, in the parent
_parent_pid = os.getpid()


def _remember_parent() -> None:
    global _parent_pid
    _parent_pid = os.getpid()


def _in_forked_child(_: object) -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != _parent_pid:
        os._exit(1)  # the parent died between the fork and the prctl
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Registration:
    """The object ``register_after_fork`` keeps a weak reference to."""


_REGISTRATION = _Registration()
os.register_at_fork(before=_remember_parent)
multiprocessing.util.register_after_fork(_REGISTRATION, _in_forked_child)
