"""Stato certificati: the ledger as a filterable, paged table, counters, charts and exports.

Nothing here loads the ledger: each filter asks the query engine
(:class:`certdesk.ledger_query.LedgerQuery`, DuckDB over ``outbox/ledger.parquet/``) for
counts, the charts' aggregates and the one page of rows on screen, so the panel costs the
same at ten requests and at a million. Exports are streamed to a file in a background
thread (:mod:`._export`), with a progress bar, while the panel keeps answering.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import CertdeskError
from ..frame import LEDGER_COLUMNS, STATI
from ..ledger_query import LedgerFilter, LedgerQuery
from . import _channels, _charts, _clock, _export, _stato_data
from ._common import Waiter, daemon_health, esc, health_banner
from ._stato_charts import ChartPainter
from ._stato_table import page_html

__all__ = ["PAGE_ROWS", "StatusPanel", "make_status_panel"]


#: Rows on one page of the table (newest first).
PAGE_ROWS = 50
# An export's batch: the progress bar moves at least every this many rows.
_EXPORT_BATCH = 16_384

_STATE_COLOURS = {
    "IN_GENERAZIONE": "#0d47a1",
    "ATTIVATO": "#1b5e20",
    "SCADUTO": "#6d4c41",
    "ANNULLATO": "#8a1c1c",
    "RIFIUTATO": "#555555",
}
_LINK_STYLE = ("display:inline-block;padding:2px 10px;border-radius:3px;background:#1565c0;"
               "color:#ffffff;text-decoration:none")


class StatusPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """The "Stato certificati" panel; build it with :func:`make_status_panel`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.query = LedgerQuery(home)
        self.which = LedgerFilter()
        self.matching = 0  # rows the filters let through
        self.total = 0
        self.page_index = 0
        self._quiet = False  # set while the panel itself changes the channel's choices
        self.exporter = Waiter("certdesk-export")
        self._build_filters()
        self._build_results()
        self._build_exports()
        for control in (self.codice_fiscale, self.stato, self.canale, self.dal, self.al,
                        self.solo_in_scadenza):
            control.observe(self._on_filter, names="value")
        self.refresh.on_click(lambda _b: self.reload())
        self.csv_button.on_click(lambda _b: self.start_export("csv"))
        self.xlsx_button.on_click(lambda _b: self.start_export("xlsx"))
        for button, move in ((self.first, "first"), (self.previous, "previous"),
                             (self.next, "next"), (self.last, "last")):
            button.on_click(lambda _b, move=move: self.turn(move))
        charts = list(self.charts.values())
        super().__init__(
            children=[
                self.daemon,
                widgets.HBox([self.codice_fiscale, self.stato, self.canale, self.refresh],
                             layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox([self.dal, self.al, self.solo_in_scadenza],
                             layout=widgets.Layout(flex_flow="row wrap")),
                self.counters,
                self.table,
                widgets.HBox([self.first, self.previous, self.page_label, self.next, self.last],
                             layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox([self.csv_button, self.xlsx_button, self.progress, self.busy],
                             layout=widgets.Layout(flex_flow="row wrap")),
                self.exports,
                widgets.HTML("<h3>Grafici</h3>"),
                widgets.HBox(charts[:2], layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox(charts[2:], layout=widgets.Layout(flex_flow="row wrap")),
            ]
        )
        self.add_class("certdesk-status-panel")
        self.reload()  # the charts follow in the background (ChartPainter)

    def _build_filters(self) -> None:
        self.daemon = widgets.HTML()
        self.codice_fiscale = widgets.Text(
            description="Codice fiscale", placeholder="tutto o parte", continuous_update=False,
            style={"description_width": "initial"},
        )
        self.codice_fiscale.add_class("certdesk-filter-cf")
        self.stato = widgets.Dropdown(
            description="Stato", options=[("Tutti", ""), *[(s, s) for s in STATI]], value="",
        )
        self.stato.add_class("certdesk-filter-stato")
        self.canale = widgets.Dropdown(description="Canale", options=[("Tutti", _channels.ALL)],
                                       value=_channels.ALL)
        self.canale.add_class("certdesk-filter-canale")
        self.dal = widgets.DatePicker(description="Richiesta dal",
                                      style={"description_width": "initial"})
        self.dal.add_class("certdesk-filter-dal")
        self.al = widgets.DatePicker(description="al", style={"description_width": "initial"})
        self.al.add_class("certdesk-filter-al")
        self.solo_in_scadenza = widgets.Checkbox(
            description=f"solo in scadenza ({_charts.EXPIRING_DAYS} giorni)", indent=False,
        )
        self.solo_in_scadenza.add_class("certdesk-filter-scadenza")
        self.refresh = widgets.Button(description="Aggiorna", icon="refresh")
        self.refresh.add_class("certdesk-refresh")

    def _build_results(self) -> None:
        self.counters = widgets.HTML()
        self.counters.add_class("certdesk-counters")
        self.table = widgets.HTML()
        self.table.add_class("certdesk-table")
        self.page_label = widgets.HTML()
        self.page_label.add_class("certdesk-page")
        self.first = widgets.Button(description="«", tooltip="Prima pagina",
                                    layout=widgets.Layout(width="40px"))
        self.previous = widgets.Button(description="‹ Precedenti",
                                       layout=widgets.Layout(width="auto"))
        self.next = widgets.Button(description="Successive ›", layout=widgets.Layout(width="auto"))
        self.last = widgets.Button(description="»", tooltip="Ultima pagina",
                                   layout=widgets.Layout(width="40px"))
        for button, name in ((self.first, "first"), (self.previous, "previous"),
                             (self.next, "next"), (self.last, "last")):
            button.add_class(f"certdesk-page-{name}")
        self.painter = ChartPainter(self.query.sibling())
        self.charts = self.painter.images

    def _build_exports(self) -> None:
        self.csv_button = widgets.Button(description="Esporta CSV", icon="download",
                                         layout=widgets.Layout(width="auto"))
        self.csv_button.add_class("certdesk-export-csv-button")
        self.xlsx_button = widgets.Button(icon="download", layout=widgets.Layout(width="auto"))
        self.xlsx_button.add_class("certdesk-export-xlsx-button")
        self.progress = widgets.IntProgress(min=0, max=1, value=0,
                                            layout=widgets.Layout(display="none"))
        self.progress.add_class("certdesk-export-progress")
        self.busy = widgets.HTML()
        self.busy.add_class("certdesk-busy")
        self.exports = widgets.HTML()
        self.exports.add_class("certdesk-exports")

    # -- data -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Look at the ledger's files and the heartbeat again, then redraw."""
        self.daemon.value = health_banner(daemon_health(self.home))
        try:
            self.query.refresh()
        except CertdeskError as exc:
            self._show_unreadable(exc.code, exc.message)
            return
        self._offer_channels()
        self.render()

    def _offer_channels(self) -> None:
        """The channel filter's choices, from the ledger and the store (``_channels``);
        the one chosen stays chosen while it is offered."""
        try:
            ledger = self.query.channels()
        except Exception:  # a torn file: render() says so; the choices wait for the next
            ledger = []
        options = tuple(_channels.status_options(
            ledger, _channels.recorded_channels(self.home)))
        if options == tuple(self.canale.options):
            return
        chosen = self.canale.value
        self._quiet = True
        try:
            self.canale.options = options
            if chosen in dict(options).values():
                self.canale.value = chosen
            else:  # gone (a ledger rebuilt without it): every channel, from the first page
                self.canale.value, self.page_index = _channels.ALL, 0
        finally:
            self._quiet = False

    def current_filter(self) -> LedgerFilter:
        return LedgerFilter(
            contains=self.codice_fiscale.value,
            stati=(self.stato.value,) if self.stato.value else (),
            dal=self.dal.value if isinstance(self.dal.value, date) else None,
            al=self.al.value if isinstance(self.al.value, date) else None,
            expiring_at=_clock.now() if self.solo_in_scadenza.value else None,
            expiring_days=_charts.EXPIRING_DAYS,
            canali=() if self.canale.value == _channels.ALL else (self.canale.value,),
        )

    # -- drawing --------------------------------------------------------------------------

    def _on_filter(self, _change: dict[str, Any]) -> None:
        if self._quiet:
            return
        self.page_index = 0
        self.render()

    def render(self) -> None:
        """Counters and the first page (what a person waits for); the charts follow, drawn
        in the background (:meth:`wait_for_charts`)."""
        self._say_busy("Aggiornamento…")
        try:
            now = _clock.now()
            self.which = self.current_filter()
            self.exports.value = ""
            self.counters.value = self._counters_html(now)
            self._draw_page(now)
            self.painter.schedule(self.which, now)
        except CertdeskError as exc:
            self._show_unreadable(exc.code, exc.message)
        except Exception as exc:  # a torn or foreign file: said, never a traceback
            self._show_unreadable("REGISTRO_NON_LEGGIBILE", str(exc).splitlines()[0])
        finally:
            self._say_busy("")

    def turn(self, move: str) -> None:
        """Another page of the same rows: only the page is asked for again."""
        pages = self.page_count()
        target = {"first": 0, "previous": self.page_index - 1, "next": self.page_index + 1,
                  "last": pages - 1}[move]
        self.page_index = min(max(0, target), pages - 1)
        self._draw_page(_clock.now())

    def page_count(self) -> int:
        return max(1, -(-self.matching // PAGE_ROWS))

    def _counters_html(self, now: datetime) -> str:
        counts = _stato_data.counts_by_state(self.query, self.which)
        soon = _stato_data.expires_soon_count(self.query, self.which, now)
        self.matching = int(counts.sum())
        self.total = self.query.count(LedgerFilter()) if self.which != LedgerFilter() \
            else self.matching
        badges = [
            f'<span class="certdesk-count certdesk-count-{esc(state)}" '
            f'style="margin-right:14px;color:{_STATE_COLOURS.get(str(state), "#333")}">'
            f"{esc(state)}: <b>{int(n)}</b></span>"
            for state, n in counts.items()
        ]
        badges.append(
            '<span class="certdesk-count certdesk-count-in-scadenza" '
            'style="background:#fff3cd;padding:0 6px">'
            f"in scadenza entro {_charts.EXPIRING_DAYS} giorni: <b>{soon}</b></span>"
        )
        self._label_exports()
        return (f"<div><b>{self.matching}</b> richieste su {self.total} &nbsp;·&nbsp; "
                + "".join(badges) + "</div>")

    def _draw_page(self, now: datetime) -> None:
        pages = self.page_count()
        first_row = self.page_index * PAGE_ROWS
        self.page_label.value = (
            f"&nbsp;Pagina <b>{self.page_index + 1}</b> di {pages} &nbsp;(righe "
            f"{min(first_row + 1, self.matching)}–{min(first_row + PAGE_ROWS, self.matching)}"
            f" di {self.matching})&nbsp;")
        self.first.disabled = self.previous.disabled = self.page_index == 0
        self.next.disabled = self.last.disabled = self.page_index >= pages - 1
        if self.matching == 0:
            what = ("Il registro è vuoto: nessuna richiesta finora." if self.total == 0
                    else "Nessuna richiesta corrisponde ai filtri.")
            self.table.value = f'<p class="certdesk-empty"><i>{what}</i></p>'
            return
        page = self.query.page(self.which, offset=first_row, limit=PAGE_ROWS,
                               total=self.matching)
        self.table.value = page_html(page, now)

    def wait_for_charts(self, timeout: float = 30.0) -> bool:
        """Wait until the charts show the current filter; True when they do."""
        return self.painter.wait(timeout)

    def _show_unreadable(self, code: str, message: str) -> None:
        self.matching = self.total = 0
        self.counters.value = "<div><b>0</b> richieste su 0</div>"
        self.table.value = '<p class="certdesk-empty"><i>Il registro è vuoto: nessuna ' \
            "richiesta finora.</i></p>"
        warning = ('<div class="certdesk-ledger-error" style="color:#8a1c1c">⚠ Registro non '
                   f"leggibile: <code>{esc(code)}</code>: {esc(message)}</div>")
        if warning not in self.daemon.value:  # said once, however often it is redrawn
            self.daemon.value += warning

    def _say_busy(self, text: str) -> None:
        self.busy.value = f'<i class="certdesk-busy-text">{esc(text)}</i>' if text else ""

    # -- exports --------------------------------------------------------------------------

    def _label_exports(self, *, exporting: bool | None = None) -> None:
        """The buttons say what they will do before anyone presses them."""
        exporting = self.exporter.busy if exporting is None else exporting
        self.csv_button.description = f"Esporta CSV ({self.matching} righe)"
        fits = self.matching <= _export.EXCEL_MAX_ROWS
        self.xlsx_button.disabled = not fits or not _export.excel_available() or exporting
        self.xlsx_button.description = (
            f"Esporta Excel ({self.matching} righe)" if fits
            else f"Excel: al massimo {_export.EXCEL_MAX_ROWS:,} righe".replace(",", "."))

    def start_export(self, kind: str) -> bool:
        """Write the filtered table to a file in the background; False if one is running."""
        which, total = self.which, self.matching
        if kind == "xlsx" and total > _export.EXCEL_MAX_ROWS:
            return False
        started = self.exporter.start(lambda: self._export(kind, which, total),
                                      on_error=self._export_failed)
        if started:
            self.csv_button.disabled = self.xlsx_button.disabled = True
        return started

    def _export(self, kind: str, which: LedgerFilter, total: int) -> None:
        target = _export.export_target(_clock.now(), f".{kind}")
        self.progress.max = max(total, 1)
        self.progress.value = 0
        self.progress.layout.display = ""
        self._say_busy(f"Esportazione in corso: {total} righe…")
        write = _export.write_csv if kind == "csv" else _export.write_xlsx
        batches = self.query.batches(which, _EXPORT_BATCH)
        written = write(batches, target.path, self._export_progress, LEDGER_COLUMNS)
        label = "CSV" if kind == "csv" else "Excel"
        self.exports.value = (
            f'Scarica: <a class="certdesk-export-{kind}" download="{esc(target.path.name)}" '
            f'href="{esc(target.href)}" target="_blank" style="{_LINK_STYLE}">'
            f"{label} ({written} righe)</a>")
        self._export_done()

    def _export_progress(self, written: int) -> None:
        self.progress.value = min(written, self.progress.max)

    def _export_failed(self, exc: BaseException) -> None:
        self.exports.value = (
            '<span class="certdesk-export-error" style="color:#8a1c1c">Esportazione non '
            f"riuscita: {esc(exc)}</span>")
        self._export_done()

    def _export_done(self) -> None:
        self.progress.layout.display = "none"
        self._say_busy("")
        self.csv_button.disabled = False
        self._label_exports(exporting=False)

    def close(self) -> None:
        self.painter.close()
        self.query.close()
        super().close()


def make_status_panel(home: str | os.PathLike[str]) -> StatusPanel:
    """The "Stato certificati" panel for the certdesk home ``home``."""
    return StatusPanel(Path(home))
