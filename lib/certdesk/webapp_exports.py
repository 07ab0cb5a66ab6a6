"""Files the admin web app hands to the browser: the exports folder and its names.

Voila serves no file of the home, and an export too large for a data link in the page
must reach the browser as a file. The web app's process (:mod:`certdesk.webapp_server`)
therefore keeps one private folder per run:

- made by :func:`make_exports_dir` with mode 0700 in a fresh ``tempfile.mkdtemp``, removed
  when the server stops;
- announced to the kernels as ``CERTDESK_EXPORTS`` (kernels inherit the server's
  environment), where the Stato panel writes (:mod:`certdesk.panels._export`);
- served, token or login cookie required, at ``<base_url>certdesk/esportazioni/<name>``,
  and at ``<base_url>voila/render/certdesk/esportazioni/<name>``, where the panel's link
  ``certdesk/esportazioni/<name>?download=1``, relative to the notebook page, lands;
- swept by :func:`sweep_exports`: what is older than :data:`MAX_AGE` is deleted.

Only names matching :data:`NAME` are served: letters, digits, ``.``, ``_`` and ``-``, not
starting with a dot, so no traversal, no dot-file (a file being written aside), no
subfolder.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

__all__ = ["EXPORTS_ENV", "MAX_AGE", "NAME", "URL_PATH", "make_exports_dir", "sweep_exports"]

EXPORTS_ENV = "CERTDESK_EXPORTS"
#: Below the server's base URL; with the page at ``voila/render/x.ipynb`` a link relative
#: to it lands on ``voila/render/certdesk/esportazioni/``, which is served too.
URL_PATH = "certdesk/esportazioni"
#: A servable name. A leading dot is refused: it rules out ``.``, ``..`` and the files a
#: writer keeps aside (``.name.tmp``) before renaming them into place.
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
#: An export is deleted this long (seconds) after it was last written.
MAX_AGE = 3600.0
PREFIX = "certdesk-exports-"


def make_exports_dir(parent: str | os.PathLike[str] | None = None) -> Path:
    """A new private folder (0700) for this run's exports."""
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    # mkdtemp asks for 0700 already; said again so that it never depends on that detail
    folder.chmod(0o700)
    return folder


def sweep_exports(folder: Path, max_age: float = MAX_AGE, now: float | None = None
                  ) -> list[str]:
    """Delete the files of ``folder`` last written over ``max_age`` seconds ago.

    Dot-files too (an export interrupted while written aside); subfolders are left alone,
    nothing here makes any. Returns the names deleted.
    """
    moment = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                continue
            if moment - entry.stat(follow_symlinks=False).st_mtime > max_age:
                os.unlink(entry.path)
                removed.append(entry.name)
        except FileNotFoundError:
            continue  # deleted meanwhile (a download does not hold it, a writer may)
    return removed
