"""The Stato panel's page of rows as HTML: the columns a person reads, dates as gg/mm/aaaa
in Italian time, reasons and channels by their labels, the certificates expiring soon
highlighted."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from ..frame import DATE_COLUMNS, format_date
from ..reasons import Motivazione
from . import _channels, _charts
from ._common import table_html

__all__ = ["SHOWN", "page_html"]

#: The table's columns: the ledger's name, the header a person reads.
SHOWN = (
    ("IdOperazione", "IdOperazione"),
    ("CodiceFiscale", "Codice fiscale"),
    ("Certificato", "Certificato"),
    ("Stato", "Stato"),
    ("DataRichiesta", "Data Richiesta"),
    ("DataScadenza", "Data Scadenza"),
    ("Esito", "Esito"),
    ("Motivazione", "Motivazione"),
    ("DataAnnullamento", "Data Annullamento"),
    ("Canale", "Canale"),
)


def page_html(page: pa.Table, now: datetime) -> str:
    """One page of the ledger (the query engine's rows) as the table a person reads."""
    rows: list[list[object]] = []
    classes: list[str] = []
    horizon = now.timestamp() + _charts.EXPIRING_DAYS * 86400
    for record in page.to_pylist():
        cells: list[object] = []
        for column, _label in SHOWN:
            value = record[column]
            if column in DATE_COLUMNS:
                cells.append(format_date(value) if value is not None else "")
            elif column == "Motivazione" and value is not None:
                cells.append(_reason_label(str(value)))
            elif column == "Canale":
                cells.append(_channels.cell_label(value))
            else:
                cells.append(value)
        rows.append(cells)
        scadenza = record["DataScadenza"]
        soon = (record["Stato"] == "ATTIVATO" and scadenza is not None
                and now.timestamp() <= scadenza.timestamp() <= horizon)
        classes.append("in-scadenza" if soon else "")
    legend = ('<p style="font-size:90%"><span style="background:#fff3cd;padding:0 6px">'
              "evidenziati</span>: certificati attivi in scadenza entro "
              f"{_charts.EXPIRING_DAYS} giorni.</p>")
    return (table_html([label for _c, label in SHOWN], rows, css_class="certdesk-ledger",
                       row_classes=classes) + legend)


def _reason_label(code: str) -> str:
    try:
        return Motivazione(code).label
    except ValueError:
        return code
