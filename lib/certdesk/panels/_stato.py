"""Stato certificati: the ledger as a filterable table, counters, charts and exports."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..frame import DATE_COLUMNS, LEDGER_COLUMNS, ROME, STATI, empty_ledger, format_date
from ..reasons import Motivazione
from . import _charts, _clock
from ._common import daemon_health, data_link, esc, health_banner, read_ledger, table_html

__all__ = ["FORMULA_TRIGGERS", "MAX_ROWS_SHOWN", "StatusPanel", "ledger_csv_bytes",
           "ledger_xlsx_bytes", "make_status_panel", "spreadsheet_text"]

#: The table shows this many rows (newest first); the exports always hold every row.
MAX_ROWS_SHOWN = 500

_SHOWN = (
    ("IdOperazione", "IdOperazione"),
    ("CodiceFiscale", "Codice fiscale"),
    ("Certificato", "Certificato"),
    ("Stato", "Stato"),
    ("DataRichiesta", "Data Richiesta"),
    ("DataScadenza", "Data Scadenza"),
    ("Esito", "Esito"),
    ("Motivazione", "Motivazione"),
    ("DataAnnullamento", "Data Annullamento"),
)

_STATE_COLOURS = {
    "IN_GENERAZIONE": "#0d47a1",
    "ATTIVATO": "#1b5e20",
    "SCADUTO": "#6d4c41",
    "ANNULLATO": "#8a1c1c",
    "RIFIUTATO": "#555555",
}


#: A spreadsheet takes a cell that starts with one of these for a formula (OWASP, "CSV
#: Injection"): ``=``, ``+``, ``-`` and ``@`` start one, a tab or carriage return can hide one.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """``text`` as a spreadsheet cell shows it and never runs it.

    A cell that starts like a formula gets a leading single quote, as OWASP recommends:
    the ledger's text comes from outside (a file's name, a request's subject), and the
    exports are opened in Excel or LibreOffice by people, not read by programs.
    """
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def _inert_text(ledger: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns hold :func:`spreadsheet_text` strings (None when missing).

    Only text is touched: dates stay datetimes, and numbers (none in today's ledger) stay
    numbers, so a spreadsheet still sorts and filters them as such.
    """
    out = ledger.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype | pd.StringDtype) or column.dtype == object:
            inert = column.astype("string").map(spreadsheet_text, na_action="ignore")
            out[name] = inert.astype(object).where(inert.notna(), None)
    return out


def ledger_csv_bytes(ledger: pd.DataFrame) -> bytes:
    """The frame in ``ledger.csv``'s columns and ISO 8601 UTC dates, safe in a spreadsheet.

    Text cells that start like a formula get a leading quote (:func:`spreadsheet_text`),
    and every cell is quoted, so that neither a separator (``;`` for an Italian Excel) nor
    a carriage return inside a cell can start a new cell with a formula in it (Python's
    csv module quotes no ``\r`` when lines end with ``\n``). :func:`certdesk.frame.load_ledger`
    reads it back to the same frame, but for those quoted cells. ``outbox/ledger.csv``
    itself stays raw: programs read it.
    """
    out = _inert_text(ledger)
    for name in DATE_COLUMNS:
        if name in out.columns:
            out[name] = out[name].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.to_csv(index=False, na_rep="", quoting=csv.QUOTE_ALL).encode("utf-8")


def excel_available() -> bool:
    return importlib.util.find_spec("openpyxl") is not None


def ledger_xlsx_bytes(ledger: pd.DataFrame) -> bytes:
    """The frame as an Excel workbook: dates in Italian time (Excel knows no time zones).

    Text cells go through :func:`spreadsheet_text`: openpyxl writes a ``str`` that starts
    with ``=`` as a formula, and once quoted none does, so every text cell is a string.
    """
    out = _inert_text(ledger)
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.tz_convert(ROME).dt.tz_localize(None)
    buf = io.BytesIO()
    out.to_excel(buf, index=False, sheet_name="Certificati", engine="openpyxl")
    return buf.getvalue()


class StatusPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """The "Stato certificati" panel; build it with :func:`make_status_panel`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ledger: pd.DataFrame = empty_ledger()
        self.filtered: pd.DataFrame = self.ledger
        self._build_filters()
        self._build_results()
        for control in (self.codice_fiscale, self.stato, self.dal, self.al,
                        self.solo_in_scadenza):
            control.observe(self._on_filter, names="value")
        self.refresh.on_click(lambda _b: self.reload())
        self.export.on_click(lambda _b: self.prepare_exports())
        charts = list(self.charts.values())
        super().__init__(
            children=[
                self.daemon,
                widgets.HBox([self.codice_fiscale, self.stato, self.refresh],
                             layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox([self.dal, self.al, self.solo_in_scadenza],
                             layout=widgets.Layout(flex_flow="row wrap")),
                self.counters,
                self.table,
                widgets.HBox([self.export, self.exports]),
                widgets.HTML("<h3>Grafici</h3>"),
                widgets.HBox(charts[:2], layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox(charts[2:], layout=widgets.Layout(flex_flow="row wrap")),
            ]
        )
        self.add_class("certdesk-status-panel")
        self.reload()

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
        self.charts = {
            key: widgets.Image(format="png", layout=widgets.Layout(width="460px"))
            for key in ("stato", "emessi", "scadenze", "motivazioni")
        }
        for key, image in self.charts.items():
            image.add_class(f"certdesk-chart-{key}")
        self.export = widgets.Button(description="Esporta tabella filtrata", icon="download",
                                     layout=widgets.Layout(width="auto"))
        self.export.add_class("certdesk-export")
        self.exports = widgets.HTML()
        self.exports.add_class("certdesk-exports")

    # -- data -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the ledger and the heartbeat again, then redraw."""
        self.ledger, problem = read_ledger(self.home)
        self.daemon.value = health_banner(daemon_health(self.home)) + problem
        self.render()

    def apply_filters(self) -> pd.DataFrame:
        frame = self.ledger
        mask = pd.Series(True, index=frame.index)
        needle = self.codice_fiscale.value.strip().upper()
        if needle:
            mask &= frame["CodiceFiscale"].str.upper().str.contains(needle, regex=False)
        if self.stato.value:
            mask &= frame["Stato"].astype("string") == self.stato.value
        richiesta = frame["DataRichiesta"].dt.tz_convert(ROME).dt.date
        if isinstance(self.dal.value, date):
            mask &= richiesta >= self.dal.value
        if isinstance(self.al.value, date):
            mask &= richiesta <= self.al.value
        if self.solo_in_scadenza.value:
            mask &= _charts.expires_soon(frame, _clock.now())
        return frame[mask.fillna(False).astype(bool)]

    # -- drawing --------------------------------------------------------------------------

    def _on_filter(self, _change: dict[str, Any]) -> None:
        self.render()

    def render(self) -> None:
        now = _clock.now()
        self.filtered = self.apply_filters()
        self.exports.value = ""
        self.counters.value = self._counters_html(now)
        self.table.value = self._table_html(now)
        self._draw_charts(now)

    def _counters_html(self, now: datetime) -> str:
        counts = _charts.counts_by_state(self.filtered)
        soon = int(_charts.expires_soon(self.filtered, now).sum())
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
        total = len(self.filtered)
        return (f"<div><b>{total}</b> richieste su {len(self.ledger)} &nbsp;·&nbsp; "
                + "".join(badges) + "</div>")

    def _table_html(self, now: datetime) -> str:
        if self.filtered.empty:
            what = ("Il registro è vuoto: nessuna richiesta finora." if self.ledger.empty
                    else "Nessuna richiesta corrisponde ai filtri.")
            return f'<p class="certdesk-empty"><i>{what}</i></p>'
        ordered = self.filtered.sort_values("DataRichiesta", ascending=False, na_position="last")
        shown = ordered.head(MAX_ROWS_SHOWN)
        soon = _charts.expires_soon(shown, now)
        rows = []
        for _, row in shown.iterrows():
            cells: list[object] = []
            for column, _label in _SHOWN:
                value = row[column]
                if column in DATE_COLUMNS:
                    cells.append(format_date(value))
                elif column == "Motivazione" and not pd.isna(value):
                    cells.append(_reason_label(str(value)))
                else:
                    cells.append(value)
            rows.append(cells)
        classes = ["in-scadenza" if flag else "" for flag in soon.to_list()]
        note = ""
        if len(ordered) > MAX_ROWS_SHOWN:
            note = (f"<p><i>Mostrate le {MAX_ROWS_SHOWN} richieste più recenti su "
                    f"{len(ordered)}: l'export le contiene tutte.</i></p>")
        legend = ('<p style="font-size:90%"><span style="background:#fff3cd;padding:0 6px">'
                  "evidenziati</span>: certificati attivi in scadenza entro "
                  f"{_charts.EXPIRING_DAYS} giorni.</p>")
        return (
            table_html([label for _c, label in _SHOWN], rows, css_class="certdesk-ledger",
                       row_classes=classes)
            + note + legend
        )

    def _draw_charts(self, now: datetime) -> None:
        frame = self.filtered
        self.charts["stato"].value = _charts.render_bar_chart(
            _charts.counts_by_state(frame), title="Certificati per stato")
        self.charts["emessi"].value = _charts.render_bar_chart(
            _charts.issued_per_month(frame).tail(24), title="Certificati emessi per mese")
        self.charts["scadenze"].value = _charts.render_bar_chart(
            _charts.expiries_ahead(frame, now), title="Scadenze nei prossimi 12 mesi",
            colour="#b8860b")
        self.charts["motivazioni"].value = _charts.render_bar_chart(
            _charts.cancellations_by_reason(frame), title="Annullamenti per motivazione",
            horizontal=True, colour="#8a1c1c")

    def prepare_exports(self) -> None:
        """Links to download the filtered table, as CSV (and Excel when openpyxl is there)."""
        stamp = _clock.now().astimezone(ROME).strftime("%Y%m%d-%H%M")
        frame = self.filtered[list(LEDGER_COLUMNS)]
        links = [data_link(ledger_csv_bytes(frame), filename=f"certificati-{stamp}.csv",
                           mime="text/csv", text=f"CSV ({len(frame)} righe)",
                           css_class="certdesk-export-csv")]
        if excel_available():
            links.append(data_link(
                ledger_xlsx_bytes(frame), filename=f"certificati-{stamp}.xlsx",
                mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                text="Excel", css_class="certdesk-export-xlsx"))
        self.exports.value = "Scarica: " + " &nbsp;·&nbsp; ".join(links)


def _reason_label(code: str) -> str:
    try:
        return Motivazione(code).label
    except ValueError:
        return code


def make_status_panel(home: str | os.PathLike[str]) -> StatusPanel:
    """The "Stato certificati" panel for the certdesk home ``home``."""
    return StatusPanel(Path(home))
