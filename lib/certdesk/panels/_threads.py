"""The panels' background threads, and a clean stop for them when the kernel exits.

A panel's work runs in daemon threads (a kernel must never wait for them to exit), and
that work asks DuckDB. A daemon thread still inside DuckDB's C++ code when Python
finalises is ended by ``pthread_exit``, which C++ answers with ``std::terminate``: the
process aborts ("terminate called without an active exception"). So at exit the queries
still running are interrupted (:func:`certdesk.ledger_query.interrupt_all`) and the
threads are given a moment to return, before finalisation.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable

from ..ledger_query import interrupt_all

__all__ = ["start_thread"]

_running: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
# How long exit waits for the interrupted threads, in all.
_EXIT_WAIT_SECONDS = 5.0


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """``target`` in a new daemon thread, stopped cleanly at exit."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    _running.add(thread)
    thread.start()
    return thread


@atexit.register
def _stop_at_exit() -> None:
    interrupt_all()
    for thread in list(_running):
        thread.join(_EXIT_WAIT_SECONDS / max(1, len(_running)))
