"""The files a panel page will load, named to the browser with the page (issue 15).

A panel page's scripts arrive in waves, each asked for only once the one before has run:
``voila.js``, then about sixty of Voila's webpack chunks, then the widget extensions'
``remoteEntry`` files and their chunks, then, once the page has its kernel, about fifteen
more of Voila's chunks and two of the widget manager's. On a first visit each wave waits
for its files to come from the server: about a third of a second of the page's wait at
any size of home (measured in Chromium's resource timings, ``docs/benchmarks.md``).

:class:`PreloadHints` learns, for each notebook page, the scripts its pages loaded (the
static handlers note every script they serve whose ``Referer`` is that page), and the
page's next responses carry them as ``Link: <…>; rel=preload; as=script`` headers: the
browser fetches every wave while the kernel is still building the panel, and each wave
then finds its files in memory. Learned rather than listed, because which chunks a page
loads is decided by the installed Voila and widget extensions at run time. A notebook's
first page borrows the files every other notebook's pages loaded (Voila's chunks and the
widget extensions are the same for all), so only the server's very first page goes
without.

Only what was served successfully (200 or 304) is noted, only scripts (``.js``), only the
path (never the token of a ``Referer``), and only for pages this server rendered; at most
:data:`MOST_PER_PAGE` per page. The static files are served to anyone (as Voila's own
are), so someone who can reach the server without a token can add existing public
scripts of this server to a page's list, and nothing else: the browser would fetch a few
more of the files any visitor may fetch.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

__all__ = ["MOST_PER_PAGE", "PRELOAD_HINTS", "PreloadHints"]

#: The application setting that holds the server's :class:`PreloadHints`.
PRELOAD_HINTS = "certdesk_preload_hints"
#: Files hinted per page at most (a panel page loads about a hundred).
MOST_PER_PAGE = 256
#: Pages learned for at most (the server has three notebooks).
_MOST_PAGES = 64
#: The one query a hinted URL may have: a version, as webpack and Voila's templates add
#: (``?v=1e2faa2ba0bbe59c4780``); anything else in a query (a token) is never repeated.
_VERSION_QUERY = re.compile(r"v=[0-9a-f]{1,128}")


class PreloadHints:
    """Per page path (``/voila/render/stato.ipynb``): the scripts and stylesheets its
    pages loaded, in the order first seen (the order a page asks for them)."""

    def __init__(self, most_per_page: int = MOST_PER_PAGE) -> None:
        self._most = most_per_page
        self._files: dict[str, dict[str, None]] = {}
        self._lock = threading.Lock()

    def page_served(self, page_path: str) -> str | None:
        """A page at ``page_path`` is being served: from now on its files are learned.
        The ``Link`` header to send with it, or None while nothing is learned."""
        with self._lock:
            if page_path not in self._files:
                if len(self._files) >= _MOST_PAGES:
                    return None
                self._files[page_path] = {}
            files = list(self._files[page_path]) or self._common(page_path)
        if not files:
            return None
        return ", ".join(f"<{url}>; rel=preload; as={_destination(url.split('?')[0])}"
                         for url in files)

    def file_served(self, path: str, query: str, referer: str | None) -> None:
        """The file at ``path`` (``?query``) was served to a page whose URL is ``referer``."""
        if not referer or _destination(path) is None or _unsafe(path):
            return
        if query and not _VERSION_QUERY.fullmatch(query):
            return
        url = f"{path}?{query}" if query else path  # as the page names it: one cache entry
        page_path = urlsplit(referer).path
        with self._lock:
            files = self._files.get(page_path)
            if files is not None and len(files) < self._most:
                files.setdefault(url, None)

    def _common(self, page_path: str) -> list[str]:
        """The files every other page learned loaded, in the first one's order (under
        the lock): what a notebook's first page is hinted."""
        others = [files for path, files in self._files.items() if path != page_path and files]
        if not others:
            return []
        return [url for url in others[0] if all(url in files for files in others[1:])]

    def files(self, page_path: str) -> list[str]:
        with self._lock:
            return list(self._files.get(page_path, ()))


def _destination(path: str) -> str | None:
    """What the page loads the file as (a preload must say it to be used): scripts and
    stylesheets; nothing else is hinted (a font's preload would need CORS mode)."""
    return {".js": "script", ".css": "style"}.get(path[path.rfind("."):])


def _unsafe(path: str) -> bool:
    """Characters that would break out of a ``Link`` header's ``<…>`` (tornado's router
    hands over the raw path: a ``>`` or a comma stays as sent)."""
    return not path.startswith("/") or any(c in path for c in "<>,; \"'\r\n\\")
