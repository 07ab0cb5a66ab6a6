"""The admin panels: ipywidgets front-ends of certdesk, one factory per notebook.

Each factory takes the certdesk home and returns a widget to ``display``:

- :func:`make_request_panel`: *Richiedi certificato* (upload a PKCS#10 request);
- :func:`make_status_panel`: *Stato certificati* (the ledger, filters, charts, exports);
- :func:`make_cancellation_panel`: *Annullamento certificato*.

The panels never hold the CA key: they read ``outbox/`` and write requests into an
inbox like any other client (Richiesta into the channel chosen, Annullamento into the
administrators' ``state/admin/inbox/``), then wait (in a background thread, so the page
stays responsive) for the daemon's receipt in that channel's ``receipts/``.
:func:`notebook_home` is the home a notebook uses; :func:`wait_for_viewer` is where a web
app's pre-heated kernel waits for its page.
"""

from ._annullamento import CancellationPanel, make_cancellation_panel
from ._common import DaemonHealth, DaemonPause, daemon_health, notebook_home
from ._preheat import wait_for_viewer
from ._richiesta import RequestPanel, make_request_panel
from ._stato import StatusPanel, make_status_panel

__all__ = [
    "CancellationPanel",
    "DaemonHealth",
    "DaemonPause",
    "RequestPanel",
    "StatusPanel",
    "daemon_health",
    "make_cancellation_panel",
    "make_request_panel",
    "make_status_panel",
    "notebook_home",
    "wait_for_viewer",
]
