"""Voila's static files, with cache headers that let the browser keep them (issue 15).

A panel page loads about a hundred files besides itself: Voila's ``voila.js`` and its
webpack chunks, and the widget extensions' chunks. As Voila 0.5.13 serves them, the chunks
of ``voila/static/`` carry no ``Cache-Control`` (a browser keeps them only as long as its
heuristic guesses from ``Last-Modified``) and those of ``voila/labextensions/`` carry
``no-cache`` (asked again on every page). Here:

- **Voila's own files under a versioned URL.** Their names (``5764.voila.js``) are webpack
  chunk ids, not content hashes: the same name may hold other code after an upgrade. So
  the pages load them from ``voila/static/<tag>/``, where the tag is a digest of every file
  of Voila's static folders (names, sizes, modification times) taken at start: the
  notebook pages' ``fullStaticUrl`` (the ``<script>`` of ``voila.js`` and webpack's public
  path) points there through Voila's ``page_config_hook``, and
  :class:`VersionedStaticFileHandler` serves it as immutable for a year. Another tag is
  not served (Voila's ``voila/static/`` takes the URL and finds no such file); the files
  change only with an install, and a new server has a new tag.
- **A name with a content hash is immutable wherever it is served** (the extensions'
  ``remoteEntry.5cbb9d2323598fbda535.js``, ``568.1e2faa2ba0bbe59c4780.js``).
- **Anything else is kept but asked again** (``no-cache``): the answer is a 304 while the
  file is the same (tornado's ``ETag`` for ``voila/static/``, ``Last-Modified`` for the
  extensions).

No authentication is added or removed: these handlers serve Voila's and the extensions'
installed files to anyone, as Voila's own do (tornado's handlers, or jupyter_server's
``FileFindHandler``, which allows the unauthenticated); they hold nothing of the home.
Paths are checked by the classes they extend (a ``..`` out of a root is a 403).
``public`` only where the handler never sets a cookie: jupyter_server's handler answers a
request carrying ``?token=`` with the login cookie, so its files are ``private``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from jupyter_server.base.handlers import FileFindHandler
from jupyter_server.utils import url_path_join
from voila.static_file_handler import (  # type: ignore[import-untyped]
    MultiStaticFileHandler,
    TemplateStaticFileHandler,
)

from .webapp_preload import PRELOAD_HINTS, PreloadHints

__all__ = [
    "IMMUTABLE",
    "IMMUTABLE_PRIVATE",
    "REVALIDATE",
    "LabextensionFileHandler",
    "UnversionedStaticFileHandler",
    "VersionedStaticFileHandler",
    "content_hashed",
    "static_tag",
    "versioned_route",
    "versioned_static_hook",
]

#: A year, never revalidated: for URLs whose bytes cannot change.
IMMUTABLE = "public, max-age=31536000, immutable"
#: The same for a handler that may set the login cookie: the browser's cache only.
IMMUTABLE_PRIVATE = "private, max-age=31536000, immutable"
#: Stored, but asked again before each use: a 304 while the file is unchanged.
REVALIDATE = "no-cache"

#: webpack's ``[contenthash]`` in a file name: 16 or more hex digits before the extension,
#: after a dot or at the start (``remoteEntry.<hash>.js``, ``<id>.<hash>.js``, ``<hash>.woff2``)
_HASHED = re.compile(r"(?:^|.*[./])[0-9a-f]{16,}\.[A-Za-z0-9]+")


def content_hashed(path: str) -> bool:
    """Whether the last part of ``path`` names its content's hash."""
    return bool(_HASHED.fullmatch(path.rsplit("/", 1)[-1]))


def static_tag(paths: Sequence[str]) -> str:
    """16 hex digits that change when any file under ``paths`` is added, removed, resized
    or rewritten (their relative names, sizes and modification times, root by root)."""
    digest = hashlib.sha256()
    for root in paths:
        digest.update(f"{root}\0".encode())
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                try:
                    info = os.stat(full)
                except OSError:
                    continue
                relative = os.path.relpath(full, root)
                digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _note_served(handler: Any) -> None:
    """Tell the server's :class:`~certdesk.webapp_preload.PreloadHints` (if any) that this
    response served a file to the page in its ``Referer``."""
    hints: PreloadHints | None = handler.settings.get(PRELOAD_HINTS)
    if hints is not None and handler.request.method == "GET" \
            and handler.get_status() in (200, 304):
        hints.file_served(handler.request.path, handler.request.query,
                          handler.request.headers.get("Referer"))


class UnversionedStaticFileHandler(MultiStaticFileHandler):  # type: ignore[misc]
    """``voila/static/<file>`` (Voila's route, unversioned): a name with a content hash
    is immutable, anything else revalidated."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", IMMUTABLE if content_hashed(path) else REVALIDATE)


class VersionedStaticFileHandler(MultiStaticFileHandler):  # type: ignore[misc]
    """``voila/static/<tag>/<file>``: the same files, under a URL that changes with them."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", IMMUTABLE)

    def on_finish(self) -> None:
        super().on_finish()
        _note_served(self)


class TemplateFileHandler(TemplateStaticFileHandler):  # type: ignore[misc]
    """``voila/templates/<template>/static/<file>``: Voila's (a year with ``?v=``), and
    a year for content-hashed names too (the fonts its stylesheets name, without ``?v=``)."""

    def set_extra_headers(self, path: str) -> None:
        if content_hashed(path):
            self.set_header("Cache-Control", IMMUTABLE)

    def on_finish(self) -> None:
        super().on_finish()
        _note_served(self)


class LabextensionFileHandler(FileFindHandler):
    """``voila/labextensions/<file>``: Voila's ``no-cache``, except for content-hashed
    names (every chunk a page loads), kept for a year."""

    def set_headers(self) -> None:
        super().set_headers()
        if content_hashed(self.path):
            self.set_header("Cache-Control", IMMUTABLE_PRIVATE)

    def on_finish(self) -> None:
        super().on_finish()
        _note_served(self)


PageConfigHook = Callable[..., dict[str, Any]]


def versioned_static_hook(tag: str, chained: PageConfigHook | None = None) -> PageConfigHook:
    """A Voila ``page_config_hook`` that points the page at ``voila/static/<tag>/``, then
    hands the page config to ``chained`` (a hook configured before), if any.

    The page config is changed in place too: Voila's tree page ignores what the hook
    returns."""

    def hook(page_config: dict[str, Any], base_url: str, **kwargs: Any) -> dict[str, Any]:
        page_config["fullStaticUrl"] = url_path_join(base_url, "voila/static", tag)
        if chained is not None:
            return chained(page_config, base_url=base_url, **kwargs)
        return page_config

    return hook


def versioned_route(server_url: str, tag: str, paths: Sequence[str]
                    ) -> tuple[str, type, dict[str, Any]]:
    """The route of ``voila/static/<tag>/``, to be tried before Voila's ``voila/static/``."""
    pattern = url_path_join(server_url, "/voila/static", re.escape(tag), "(.*)")
    return (pattern, VersionedStaticFileHandler,
            {"paths": list(paths), "default_filename": "index.html"})
