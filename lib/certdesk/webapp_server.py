"""The Voila application behind ``certdesk admin``: Voila, plus what it lacks here.

Imported by :mod:`certdesk.voila_launcher` only after the token redaction is installed
(importing Voila sets up its loggers).

1. **A page's kernel is released when the page goes.** Voila's page sends, on
   ``beforeunload``, ``navigator.sendBeacon(base + "voila/api/shutdown/<kernel>",
   FormData{_xsrf: <the _xsrf cookie>})``. That POST is authenticated by the login cookie,
   not the token, so jupyter_server applies its XSRF check; and Voila never sets an
   ``_xsrf`` cookie, so the beacon carried an empty ``_xsrf`` and was refused: ``403 POST
   /voila/api/shutdown/<id>: '_xsrf' argument missing from POST`` (measured with Voila
   0.5.13, jupyter_server 2.21). :class:`XsrfCookiePageHandler` serves the notebook pages
   and sets that cookie, so the beacon passes the check, which stays on for every POST.
2. **A kernel no page holds is shut down** after a short grace
   (:mod:`certdesk.webapp_kernels`), for pages that die without the beacon.
3. **Exports are served as files** from a private folder (:mod:`certdesk.webapp_exports`)
   by :class:`ExportFileHandler`, token or login cookie required.
4. **The browser keeps Voila's static files** (:mod:`certdesk.webapp_static`): the pages
   load Voila's chunks from a versioned ``voila/static/<tag>/``, immutable, and the
   extensions' content-hashed chunks are immutable too, instead of being fetched or
   revalidated on every page.
5. **A page names the scripts it will load** (:mod:`certdesk.webapp_preload`), learned
   from the pages served before it, so that a first visit fetches them all at once.

Also ``GET <base_url>api/kernels`` lists the running kernels (read-only: no kernel can be
started through it), for the tests and for an administrator checking memory; each model
says ``"certdesk_pooled": true`` for a kernel Voila keeps for the next page, and
``"certdesk_warm": true`` once that kernel has run its notebook up to the page's arrival.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
from pathlib import Path
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import AuthenticatedFileHandler, FileFindHandler
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Float, TraitError
from voila.app import Voila  # type: ignore[import-untyped]
from voila.static_file_handler import (  # type: ignore[import-untyped]
    MultiStaticFileHandler,
    TemplateStaticFileHandler,
)
from voila.tornado.handler import TornadoVoilaHandler  # type: ignore[import-untyped]

from . import webapp_exports, webapp_static
from .webapp_kernels import (
    DEFAULT_GRACE,
    DisconnectedKernelReaper,
    KernelPool,
    sweep_interval,
)
from .webapp_preload import PRELOAD_HINTS, PreloadHints

__all__ = [
    "CertdeskVoila",
    "ExportFileHandler",
    "KernelListHandler",
    "XsrfCookiePageHandler",
    "kernel_models",
]

#: The application setting that holds the :class:`KernelPool`.
KERNEL_POOL = "certdesk_kernel_pool"


class XsrfCookiePageHandler(TornadoVoilaHandler):  # type: ignore[misc]
    """Voila's notebook page, which also sets the ``_xsrf`` cookie its beacon sends back."""

    async def prepare(self) -> None:
        await super().prepare()
        # after authentication: an anonymous request was redirected to the login page
        if self.current_user is not None and not self._finished:
            self.xsrf_token  # noqa: B018 -- reading it sets the cookie (tornado)
            hints: PreloadHints = self.settings[PRELOAD_HINTS]
            link = hints.page_served(self.request.path)
            if link is not None:
                self.set_header("Link", link)


class KernelListHandler(MainKernelHandler):
    """``GET api/kernels``: the running kernels' models, each saying whether it waits in
    Voila's pool; POST (start a kernel) is 405."""

    SUPPORTED_METHODS = ("GET",)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pool: KernelPool = self.settings[KERNEL_POOL]
        pooled, warm = pool.pooled(), pool.warm()
        models = [{**model, "certdesk_pooled": model.get("id") in pooled,
                   "certdesk_warm": model.get("id") in warm}
                  for model in kernel_models(self.kernel_manager)]
        self.finish(json.dumps(models, default=json_default))


def kernel_models(manager: Any) -> list[dict[str, Any]]:
    """Each running kernel's model. jupyter_server's ``list_kernels`` fails whole (a 500)
    while a kernel is being started, registered before its ``last_activity`` is set; such
    a kernel, and one gone meanwhile, is left out until the next look."""
    models = []
    for kernel_id in manager.list_kernel_ids():
        try:
            models.append(manager.kernel_model(kernel_id))
        except (KeyError, TraitError, web.HTTPError):
            continue
    return models


class ExportFileHandler(AuthenticatedFileHandler):
    """One file of the exports folder, streamed by tornado in chunks.

    ``?download=1`` makes it an attachment (jupyter_server's file handler). Names outside
    :data:`certdesk.webapp_exports.NAME` are 404, whatever the folder holds.
    """

    def parse_url_path(self, url_path: str) -> str:
        if not webapp_exports.NAME.fullmatch(url_path):
            raise web.HTTPError(404)
        return url_path

    def set_headers(self) -> None:
        super().set_headers()
        # an export lists people's codici fiscali: nothing of it stays in a browser cache
        self.set_header("Cache-Control", "no-store")


def export_routes(server_url: str, folder: Path) -> list[tuple[str, type, dict[str, Any]]]:
    """The exports' URLs: below the base URL, and below ``voila/render/``, where a link
    relative to a notebook page (``voila/render/x.ipynb``) lands."""
    pattern = webapp_exports.URL_PATH + r"/([^/]+)"
    return [(url_path_join(server_url, prefix, pattern), ExportFileHandler,
             {"path": str(folder)})
            for prefix in ("/", "/voila/render/")]


#: Voila's handler classes, and ours that take their routes (the exact class: Voila's
#: ThemesHandler, a FileFindHandler too, keeps its own).
_OURS_FOR_VOILAS: dict[type, type] = {
    TornadoVoilaHandler: XsrfCookiePageHandler,
    MultiStaticFileHandler: webapp_static.UnversionedStaticFileHandler,
    FileFindHandler: webapp_static.LabextensionFileHandler,
    TemplateStaticFileHandler: webapp_static.TemplateFileHandler,
}


class CertdeskVoila(Voila):  # type: ignore[misc]
    """Voila with the page handler, the kernel reaper, the exports and the cached static
    files of the module."""

    disconnected_grace = Float(
        DEFAULT_GRACE, config=True,
        help="Seconds a kernel may stay with no page connected (and idle) before it is "
             "shut down.")
    export_max_age = Float(
        webapp_exports.MAX_AGE, config=True,
        help="Seconds after which an export file is deleted.")

    exports_dir: Path | None = None
    static_tag: str = ""
    _sweeper: PeriodicCallback | None = None

    def start(self) -> None:
        folder = webapp_exports.make_exports_dir()
        self.exports_dir = folder
        # removed at exit even if the server dies before its own stop() runs
        atexit.register(shutil.rmtree, folder, True)
        # the kernels inherit it: Voila starts them with a copy of os.environ
        os.environ[webapp_exports.EXPORTS_ENV] = str(folder)
        self.log.info("certdesk: exports in %s, kept %.0f s", folder, self.export_max_age)
        super().start()

    def init_settings(self) -> dict[str, Any]:
        # before Voila's: it hands the hook to the kernel pool, which renders pages ahead
        self.static_tag = webapp_static.static_tag(self.static_paths)
        config = self.voila_configuration
        config.page_config_hook = webapp_static.versioned_static_hook(
            self.static_tag, config.page_config_hook)
        self.log.info("certdesk: Voila's static files at voila/static/%s/", self.static_tag)
        settings: dict[str, Any] = super().init_settings()
        settings[KERNEL_POOL] = KernelPool(self.kernel_manager)
        settings[PRELOAD_HINTS] = PreloadHints()
        return settings

    def init_handlers(self) -> list[Any]:
        handlers: list[Any] = []
        for route in super().init_handlers():
            if route[1] in _OURS_FOR_VOILAS:
                route = (route[0], _OURS_FOR_VOILAS[route[1]], *route[2:])
            handlers.append(route)
        assert self.exports_dir is not None, "start() makes the exports folder first"
        ours: list[Any] = [
            (url_path_join(self.server_url, "/api/kernels"), KernelListHandler),
            *export_routes(self.server_url, self.exports_dir),
            # before voila/static/(.*), which would take it
            webapp_static.versioned_route(self.server_url, self.static_tag,
                                          self.static_paths),
        ]
        # first: tornado takes the first match, and voila/render/(.*) would take ours
        return [*ours, *handlers]

    def listen(self) -> None:
        reaper = DisconnectedKernelReaper(self.kernel_manager, self.disconnected_grace,
                                          log=self.log,
                                          pooled=self.app.settings[KERNEL_POOL].pooled)
        self.log.info("certdesk: kernels with no page for %.0f s are shut down",
                      self.disconnected_grace)

        async def sweep() -> None:
            await reaper.reap()
            if self.exports_dir is not None:
                for name in webapp_exports.sweep_exports(self.exports_dir,
                                                         self.export_max_age):
                    self.log.info("certdesk: export %s deleted (older than %.0f s)",
                                  name, self.export_max_age)

        interval = sweep_interval(self.disconnected_grace)
        self._sweeper = PeriodicCallback(sweep, interval * 1000)
        self._sweeper.start()
        super().listen()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
        try:
            super().stop()
        finally:
            if self.exports_dir is not None:
                shutil.rmtree(self.exports_dir, ignore_errors=True)
