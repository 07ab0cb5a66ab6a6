"""The process ``certdesk admin`` becomes: token redaction first, then Voila.

    python -m certdesk.voila_launcher NOTEBOOKS [Voila options]

takes the arguments of ``python -m voila`` (plus ``--CertdeskVoila.*``, see
:class:`certdesk.webapp_server.CertdeskVoila`); the token comes from ``JUPYTER_TOKEN``, as
for Voila itself. :func:`certdesk.webapp.main` execs it, so the logging of the whole
server (Voila, jupyter_server, tornado's access log) runs in this process, behind
:func:`certdesk.logredact.install`.

The application is Voila's own, subclassed (:mod:`certdesk.webapp_server`): a page's
kernel is shut down when the page goes, kernels no page holds are shut down after a short
grace, and exports are served as files from a private folder removed at exit.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from . import logredact

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    token = os.environ.get("JUPYTER_TOKEN", "")
    logredact.install([token])
    # imported only now, so that nothing Voila sets up at import can log before the filter
    server = importlib.import_module("certdesk.webapp_server")
    server.CertdeskVoila.launch_instance(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
