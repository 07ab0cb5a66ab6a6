"""The Stato panel's four charts, drawn in a background thread.

A chart is a few aggregate queries and an SVG picture: tens to hundreds of
milliseconds each at a million requests, which a person should not wait for before the
counters and the table answer. :class:`ChartPainter` draws the latest filter asked for;
filters asked for while it draws are skipped but the last, and an image whose bars have
not changed is not drawn again.

The first charts wait for the page: until the browser has made a view of a chart (which
ipywidgets counts, below), someone waits for them (:meth:`ChartPainter.wait`), or
:data:`UNSEEN_WAIT` has passed. Drawn at once, their queries took the page's two cores
while the browser was still loading the page's scripts, and the counters and table showed
later by as much as the charts cost (docs/benchmarks.md, "Panels and ledger at scale").
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..ledger_query import LedgerFilter, LedgerQuery
from . import _charts, _stato_data
from ._bars import WIDTH, placeholder_svg
from ._threads import start_thread

__all__ = ["PENDING", "TITLES", "ChartPainter"]

log = logging.getLogger(__name__)

#: Each chart's bars and how to draw them.
ChartSeries = dict[str, tuple[pd.Series, dict[str, Any]]]


#: Each chart's title, by its key.
TITLES = {
    "stato": "Certificati per stato",
    "emessi": "Certificati emessi per mese",
    "scadenze": "Scadenze nei prossimi 12 mesi",
    "motivazioni": "Annullamenti per motivazione",
}

#: The class of a chart still showing its placeholder (:func:`._bars.placeholder_svg`).
PENDING = "certdesk-chart-pending"

#: Seconds the first charts wait for a view of theirs before they are drawn anyway (a
#: front end that does not count views, a panel never shown).
UNSEEN_WAIT = 10.0


class ChartPainter:
    def __init__(self, query: LedgerQuery) -> None:
        self.query = query
        self._shown = threading.Event()  # a view of a chart was made, or someone waits
        self._closed = False
        self.images = {
            key: widgets.Image(value=placeholder_svg(title), format="svg+xml",
                               layout=widgets.Layout(width=f"{WIDTH}px"))
            for key, title in TITLES.items()
        }  # fmt: skip
        for key, image in self.images.items():
            image.add_class(f"certdesk-chart-{key}")
            image.add_class(PENDING)
            # Counted views (ipywidgets' _view_count: None means "not counted"): an image
            # drawn while its page connects, after the page took the widgets' state but
            # before it made the image's view, was seen lost (a blank chart until the next
            # filter); each new view is sent the image again.
            image._view_count = 0
            image.observe(self._on_new_view, names="_view_count")
        self._drawn: dict[str, tuple[object, ...]] = {}
        self._lock = threading.Lock()
        self._wanted: tuple[LedgerFilter, datetime] | None = None
        self._thread: threading.Thread | None = None

    def schedule(self, which: LedgerFilter, now: datetime) -> None:
        """Draw the charts of ``which`` soon, in the background."""
        with self._lock:
            self._wanted = (which, now)
            if self._thread is None:
                self._thread = start_thread(self._loop, "certdesk-grafici")

    def _on_new_view(self, change: dict[str, Any]) -> None:
        if (change["new"] or 0) > (change["old"] or 0):
            self._shown.set()
            change["owner"].send_state("value")

    def wait(self, timeout: float) -> bool:
        """Wait until the charts show the last filter scheduled; True when they do."""
        self._shown.set()  # whoever waits wants them now
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                thread = self._thread
            if thread is None:
                return True
            thread.join(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        """No more charts: a drawing waiting for the page gives up instead of asking a
        closed connection; then the connection is closed."""
        with self._lock:
            self._wanted = None
            self._closed = True
        self._shown.set()
        self.query.close()

    def _loop(self) -> None:
        self._shown.wait(UNSEEN_WAIT)
        while True:
            with self._lock:
                wanted, self._wanted = self._wanted, None
                if wanted is None or self._closed:
                    self._thread = None
                    return
            try:
                self._draw(self._series(*wanted))
            except Exception:  # the table is right; a chart that failed stays as it was
                log.exception("the Stato panel's charts could not be drawn")

    def _series(self, which: LedgerFilter, now: datetime) -> ChartSeries:
        query = self.query
        return {
            "stato": (_stato_data.counts_by_state(query, which), {"title": TITLES["stato"]}),
            "emessi": (_stato_data.issued_per_month(query, which).tail(24),
                       {"title": TITLES["emessi"]}),
            "scadenze": (_stato_data.expiries_ahead(query, which, now),
                         {"title": TITLES["scadenze"], "colour": "#b8860b"}),
            "motivazioni": (_stato_data.cancellations_by_reason(query, which),
                            {"title": TITLES["motivazioni"], "horizontal": True,
                             "colour": "#8a1c1c"}),
        }  # fmt: skip

    def _draw(self, series: ChartSeries) -> None:
        for key, (counts, style) in series.items():
            bars = (tuple(map(str, counts.index)), tuple(int(v) for v in counts.to_numpy()))
            if self._drawn.get(key) == bars:
                continue  # the same bars: the image on screen is already right
            self.images[key].value = _charts.render_bar_chart(counts, **style)
            self.images[key].remove_class(PENDING)  # after the picture, on the same comm
            self._drawn[key] = bars
