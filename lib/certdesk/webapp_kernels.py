"""Shut down the kernels that no page holds any more.

Every Voila page load starts a kernel. A page that closes normally asks for its kernel's
shutdown (a ``sendBeacon`` on ``beforeunload``, see :mod:`certdesk.webapp_server`); one
that dies without it (a browser crash, a lost network, a beacon that never arrives) leaves
the kernel with no websocket. :class:`DisconnectedKernelReaper`, run every few seconds by
the server, shuts down a kernel once it has had no connection for ``grace`` seconds and no
activity for as long, so memory never piles up with page views. The long idle cull of
jupyter_server stays for open but forgotten tabs.

A kernel still working (``busy``, ``starting``, restarting) is spared: Voila executes the
notebook before the page connects, and a silent cell that runs longer than the grace
would otherwise be cut short while its page waits. So is a kernel of Voila's pool (warmed
up ahead, no page yet: :class:`KernelPool`), which Voila would otherwise hand, shut
down, to the next page.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["DEFAULT_GRACE", "DisconnectedKernelReaper", "KernelPool", "sweep_interval"]

#: Seconds without a connection (and without activity) before a kernel is shut down: a
#: page's websocket connects within a second or two of the page arriving, and reconnects
#: within a few seconds after a network blip.
DEFAULT_GRACE = 20.0
_WORKING = frozenset({"busy", "starting", "restarting", "autorestarting"})


class KernelManager(Protocol):
    """The part of jupyter_server's MappingKernelManager the reaper uses."""

    def list_kernel_ids(self) -> list[str]: ...

    def kernel_model(self, kernel_id: str) -> dict[str, Any]: ...

    def shutdown_kernel(self, kernel_id: str) -> Any: ...


class KernelPool:
    """Which kernels Voila keeps warmed up for the next pages (``preheat_kernel``).

    Voila (0.5) has no public answer: its pool kernels are started with ``VOILA_PREHEAT``
    in their environment (kept by jupyter_client in the kernel manager's launch
    arguments, from the moment the kernel is being started), and Voila hands one to a
    page through ``get_rendered_notebook``, which is wrapped here to note the kernels
    handed out. A pool kernel is one started for the pool and not handed out yet; it is
    warm once it waits for its page (:meth:`warm`).
    """

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._handed: set[str] = set()
        handing = getattr(manager, "get_rendered_notebook", None)
        if handing is None:  # preheating off: no pool
            return

        async def noting(*args: Any, **kwargs: Any) -> Any:
            result = await handing(*args, **kwargs)
            self._handed.add(str(result[2]))  # (render task, cells rendered, kernel id)
            return result

        manager.get_rendered_notebook = noting

    def _started_for_pool(self, kernel_id: str) -> bool:
        try:
            launch = getattr(self._manager.get_kernel(kernel_id), "_launch_args", None)
        except KeyError:  # gone meanwhile
            return False
        env = (launch or {}).get("env") or {}
        return bool(env.get("VOILA_PREHEAT") == "True")

    def pooled(self) -> set[str]:
        live = set(self._manager.list_kernel_ids())
        self._handed &= live
        return {k for k in live - self._handed if self._started_for_pool(k)}

    def warm(self) -> set[str]:
        """The pool's kernels that finished warming up: their notebook reached
        :func:`certdesk.panels.wait_for_viewer`, whose first act is to open Voila's
        request-info socket (``voila/query/<kernel>``) and wait on it."""
        from voila.request_info_handler import (  # type: ignore[import-untyped]
            RequestInfoSocketHandler,
        )

        waiting = set(RequestInfoSocketHandler._waiters)
        return self.pooled() & waiting


def sweep_interval(grace: float) -> float:
    """How often to look (seconds): a quarter of the grace, between 0.5 and 5."""
    return min(5.0, max(0.5, grace / 4))


def _idle_seconds(model: dict[str, Any], now: dt.datetime) -> float:
    raw = model.get("last_activity")
    if not raw:
        return 0.0  # never stamped: treated as active, the "unconnected since" clock decides
    last = dt.datetime.fromisoformat(str(raw))
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return (now - last).total_seconds()


class DisconnectedKernelReaper:
    """Shuts down kernels unconnected and idle for ``grace`` seconds (see the module)."""

    def __init__(self, manager: KernelManager, grace: float = DEFAULT_GRACE, *,
                 clock: Callable[[], float] = time.monotonic,
                 pooled: Callable[[], set[str]] = set,
                 log: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> None:
        self.manager = manager
        self.grace = grace
        self._clock = clock
        self._log = log or logging.getLogger(__name__)
        # first moment each kernel was seen without a connection: a websocket that drops
        # and comes back within the grace (a network blip) does not cost the page its kernel
        self._unconnected_since: dict[str, float] = {}
        self._pooled_now = pooled
        self._pooled: set[str] = set()

    def _orphaned(self, kernel_id: str, now: float, wall: dt.datetime) -> bool:
        try:
            model = self.manager.kernel_model(kernel_id)
        except Exception:  # gone meanwhile: KeyError, or tornado's 404
            self._unconnected_since.pop(kernel_id, None)
            return False
        if (model.get("connections", 0) or model.get("execution_state") in _WORKING
                or kernel_id in self._pooled):
            self._unconnected_since.pop(kernel_id, None)
            return False
        since = self._unconnected_since.setdefault(kernel_id, now)
        return now - since >= self.grace and _idle_seconds(model, wall) >= self.grace

    async def reap(self) -> list[str]:
        """One look at every kernel; returns the ids shut down."""
        now, wall = self._clock(), dt.datetime.now(dt.UTC)
        kernel_ids = list(self.manager.list_kernel_ids())
        self._pooled = self._pooled_now()
        for gone in set(self._unconnected_since) - set(kernel_ids):
            del self._unconnected_since[gone]
        reaped: list[str] = []
        for kernel_id in kernel_ids:
            if not self._orphaned(kernel_id, now, wall):
                continue
            self._log.info("certdesk: kernel %s shut down: no page connected for %.0f s",
                           kernel_id, self.grace)
            self._unconnected_since.pop(kernel_id, None)
            try:
                result = self.manager.shutdown_kernel(kernel_id)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one kernel's failure must not spare the others
                if kernel_id in self.manager.list_kernel_ids():
                    self._log.exception("certdesk: kernel %s: shutdown failed", kernel_id)
                continue
            reaped.append(kernel_id)
        return reaped
