"""Annullamento certificato: pick a codice fiscale, a reason, file the request, see the outcome.

The rules are the daemon's (contract, section 7); the panel only says them plainly before
the person files: only ``ATTIVATO`` certificates can be cancelled, and the first accepted
cancellation of a codice fiscale cancels all of them at once (the portal's "prima
richiesta cumulativa"); every later one names exactly one IdOperazione.

The panel files into the administrators' channel (``channels.ADMIN_CHANNEL``:
``state/admin/inbox/``, its receipts in ``state/admin/receipts/``), whose authority is
every certificate, whatever channel it was requested through: so the person's
certificates it lists (each with its channel) are all it may cancel, and "first" and
"cumulative" count all of them, as the daemon does for the administrators. A cancellation
filed into ``inbox/`` could cancel only the default channel's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..cancellation import is_first_cancellation
from ..channels import ADMIN_CHANNEL
from ..client import file_cancellation, receipt_path
from ..errors import CertdeskError
from ..frame import format_date, typed_from_arrow
from ..ledger_query import LedgerFilter, LedgerQuery
from ..reasons import Motivazione
from . import _channels, _common
from ._common import (
    Waiter,
    daemon_health,
    errors_html,
    esc,
    health_banner,
    table_html,
)
from ._people import PeoplePicker, normalise_cf

__all__ = ["CancellationPanel", "make_cancellation_panel"]

#: Where the panel files, as a person reads it.
_ADMIN_INBOX = "state/admin/inbox/"


class CancellationPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """The "Annullamento certificato" panel; build it with :func:`make_cancellation_panel`."""

    def __init__(self, home: Path, *, timeout: float = 120.0, interval: float = 0.2) -> None:
        self.home = home
        self.timeout = timeout
        self.interval = interval
        self.waiter = Waiter("certdesk-annullamento")
        # the ledger's files are asked, never loaded: a person's rows, a bounded list of
        # people per keystroke (docs/benchmarks.md, "Panels and ledger at scale")
        self.query = LedgerQuery(home)
        self.people = PeoplePicker(self.query)
        self.active: pd.DataFrame = self._rows_of("")
        self.shown_cf = ""  # whose certificates are on screen: what a filing names
        self._quiet = False  # set while the panel itself writes the field
        self._typed = ""  # what the suggestions answer: typed text, not a select() call
        self.cumulative = False
        self.last_receipt: dict[str, Any] | None = None
        self.last_input: Path | None = None
        self._build_person()
        self._build_form()
        self.codice_fiscale.observe(lambda _c: self._on_typing(), names="value")
        self.codice_fiscale.on_msg(self._on_field_message)
        self.cerca.on_click(lambda _b: self.select())
        self.submit.on_click(self._on_submit)
        super().__init__(
            children=[
                self.daemon,
                widgets.HBox([self.codice_fiscale, self.cerca]),
                self.certs,
                self.notice,
                self.form,
                self.status,
                self.result,
            ]
        )
        self.add_class("certdesk-cancellation")
        self._offer()
        self.daemon.value = health_banner(daemon_health(self.home)) + self._refresh()

    def _build_person(self) -> None:
        """The daemon's banner, the codice fiscale, the person's certificates."""
        self.daemon = widgets.HTML()
        self.codice_fiscale = widgets.Combobox(
            description="Codice fiscale", placeholder="digita o scegli", ensure_option=False,
            # every keystroke reaches the kernel, which answers with a bounded list
            continuous_update=True, style={"description_width": "initial"},
        )
        self.codice_fiscale.add_class("certdesk-cf")
        self.cerca = widgets.Button(description="Cerca", icon="search")
        self.cerca.add_class("certdesk-cerca")
        self.certs = widgets.HTML()
        self.certs.add_class("certdesk-active")
        self.notice = widgets.HTML()
        self.notice.add_class("certdesk-notice")

    def _build_form(self) -> None:
        """The annullamento's fields, its button, and where its answer shows."""
        self.scelta = widgets.Dropdown(description="Id Operazione", options=[],
                                       style={"description_width": "initial"},
                                       layout=widgets.Layout(width="auto", display="none"))
        self.scelta.add_class("certdesk-scelta")
        self.motivazione = widgets.RadioButtons(
            options=[(m.label, m.value) for m in Motivazione], value=None,
            description="Motivazione:", style={"description_width": "initial"},
        )
        self.motivazione.add_class("certdesk-motivazione")
        self.nota = widgets.Textarea(
            description="Note:", placeholder="obbligatorie per la motivazione «Altro»",
            style={"description_width": "initial"}, layout=widgets.Layout(width="32em"),
        )
        self.nota.add_class("certdesk-nota")
        self.operatore = widgets.Text(
            description="Operatore", value=os.environ.get("CERTDESK_OPERATORE", ""),
            placeholder="chi richiede l'annullamento", style={"description_width": "initial"},
        )
        self.operatore.add_class("certdesk-operatore")
        self.submit = widgets.Button(
            description="Richiedi annullamento", button_style="danger", icon="ban",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.submit.add_class("certdesk-submit")
        self.status = widgets.HTML()
        self.status.add_class("certdesk-status")
        self.result = widgets.HTML()
        self.result.add_class("certdesk-result")
        self.form = widgets.VBox(
            [self.scelta, self.motivazione, self.nota, self.operatore,
             widgets.HBox([self.submit])],
            layout=widgets.Layout(display="none"),
        )

    # -- choosing the person ----------------------------------------------------------------

    def _offer(self) -> None:
        """The field's suggestions: a bounded prefix match, never the whole population."""
        self.codice_fiscale.options = self.people.starting_with(self._typed)

    def _on_typing(self) -> None:
        if self._quiet:
            return
        cf = self._typed = normalise_cf(self.codice_fiscale.value)
        self._offer()
        if cf and cf in self.people:  # typed in full, or picked from the suggestions
            self._select(cf)
        elif cf != self.shown_cf:
            # another person is being typed: never leave a form that files for the last one
            self._show_person("", self._rows_of(""), cumulative=False)

    def _on_field_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # Enter in the field (the front end's "submit" event): search even for a codice
        # fiscale with nothing ATTIVATO, so the page can say there is nothing to cancel
        if isinstance(content, dict) and content.get("event") == "submit":
            self.select()

    def select(self, codice_fiscale: str | None = None) -> None:
        """Show the ATTIVATO certificates of a codice fiscale (re-reading the ledger)."""
        if codice_fiscale is not None and codice_fiscale != self.codice_fiscale.value:
            self._quiet = True
            try:
                self.codice_fiscale.value = codice_fiscale
            finally:
                self._quiet = False
        self._select(normalise_cf(self.codice_fiscale.value))

    def _select(self, cf: str) -> None:
        problem = self._refresh()
        self.daemon.value = health_banner(daemon_health(self.home)) + problem
        self._offer()  # the people may have changed since the last keystroke
        if not cf:
            self._show_person("", self._rows_of(""), cumulative=False)
            return
        mine = self._rows_of(cf)
        active = mine[mine["Stato"].astype("string") == "ATTIVATO"]
        # the engine's own rule, asked of the ledger's rows
        cumulative = is_first_cancellation(mine["Stato"].astype("string").dropna())
        self._show_person(cf, active.sort_values("DataRichiesta"), cumulative=cumulative)

    def _refresh(self) -> str:
        """Look at the ledger's files again; an HTML warning when they cannot be read."""
        try:
            self.query.refresh()
        except CertdeskError as exc:
            return ('<div class="certdesk-ledger-error" style="color:#8a1c1c">⚠ Registro non '
                    f"leggibile: <code>{esc(exc.code)}</code>: {esc(exc.message)}</div>")
        return ""

    def _rows_of(self, cf: str) -> pd.DataFrame:
        """Every request of ``cf`` (none for ""), typed as ``load_ledger`` types them."""
        rows = self.query.select(LedgerFilter(codice_fiscale=cf)) if cf else self.query.empty()
        return typed_from_arrow(rows)

    def _show_person(self, cf: str, active: pd.DataFrame, *, cumulative: bool) -> None:
        self.active = active
        self.cumulative = cumulative
        self.shown_cf = cf
        has_active = not active.empty
        if not has_active:
            # the words first, then the button goes: a person never sees a stale list
            self.certs.value = "" if not cf else (
                f'<p class="certdesk-none">Nessun certificato in stato <b>ATTIVATO</b> per '
                f"<code>{esc(cf)}</code>: non c'è nulla da annullare.</p>"
            )
            self.notice.value = ""
            self.submit.layout.display = "none"
            self.form.layout.display = "none"
            return
        rows = [
            (r["IdOperazione"], _channels.cell_label(r["Canale"]),
             format_date(r["DataRichiesta"]), format_date(r["DataScadenza"]))
            for _, r in active.iterrows()
        ]
        self.certs.value = (
            f"<p>Certificati in stato <b>ATTIVATO</b> di <code>{esc(cf)}</code>:</p>"
            + table_html(["Id Operazione", "Canale", "Data richiesta", "Data scadenza"], rows,
                         css_class="certdesk-active-table")
        )
        ids = [str(r["IdOperazione"]) for _, r in active.iterrows()]
        if cumulative:
            n = len(ids)
            which = "il certificato elencato" if n == 1 else f"TUTTI i {n} certificati elencati"
            if active["Canale"].fillna("").nunique() > 1:
                which += ", di ogni canale"
            self.notice.value = (
                '<div class="certdesk-cumulativa" style="background:#fff3cd;padding:6px 8px;'
                'border-radius:4px">Questa è la <b>prima</b> richiesta di annullamento per '
                f"<code>{esc(cf)}</code>: è cumulativa e annullerà <b>{which}</b>. "
                "Dopo l'annullamento si può richiedere un nuovo certificato in ogni momento."
                "</div>"
            )
            self.scelta.layout.display = "none"
            self.scelta.options = []
        else:
            self.notice.value = (
                '<div class="certdesk-singola">Scegli il certificato da annullare: dopo la '
                "prima richiesta, ogni annullamento riguarda un solo IdOperazione.</div>"
            )
            self.scelta.options = [
                (f"{r['IdOperazione']} ({_channels.cell_label(r['Canale'])}, richiesto il "
                 f"{format_date(r['DataRichiesta'])})", str(r["IdOperazione"]))
                for _, r in active.iterrows()
            ]
            self.scelta.value = ids[0]
            self.scelta.layout.display = ""
        self.form.layout.display = ""
        self.submit.layout.display = ""

    # -- filing -----------------------------------------------------------------------------

    def _on_submit(self, _button: Any = None) -> None:
        self.daemon.value = health_banner(daemon_health(self.home))
        if self.waiter.busy:
            self._say("warn", "Una richiesta è già in elaborazione: attendi il suo esito.")
            return
        cf = self.shown_cf  # the person whose certificates are listed, not a half-typed one
        if self.active.empty:
            self._say("error", "Nessun certificato ATTIVATO da annullare.")
            return
        code = self.motivazione.value
        if code is None:
            self._say("error", "Scegli la motivazione dell'annullamento.")
            return
        reason = Motivazione(code)
        nota = self.nota.value.strip()
        if reason.requires_note and not nota:
            self._say("error", "Per la motivazione «Altro» le note sono obbligatorie.")
            return
        operatore = self.operatore.value.strip()
        if not operatore:
            self._say("error", "Indica il nome dell'operatore che richiede l'annullamento.")
            return
        if self.cumulative:
            ids = [str(i) for i in self.active["IdOperazione"]]
        else:
            if not self.scelta.value:
                self._say("error", "Scegli il certificato da annullare.")
                return
            ids = [str(self.scelta.value)]
        try:  # the administrators' channel: it may cancel any certificate of the person
            path = file_cancellation(self.home, codice_fiscale=cf, id_operazione=ids,
                                     motivazione=reason, nota=nota, operatore=operatore,
                                     canale=ADMIN_CHANNEL)
        except OSError as exc:
            self._say("error", _admin_inbox_problem(exc))
            return
        self.last_input = path
        self.last_receipt = None
        self.result.value = ""
        self.submit.disabled = True
        self._say("info", f"Richiesta <code>{esc(path.name)}</code> depositata in "
                          f"<code>{_ADMIN_INBOX}</code> (canale degli amministratori): in "
                          "attesa dell'elaborazione…")
        self.waiter.start(lambda: self._wait(path.name, cf, reason), self._on_error)

    def _wait(self, name: str, cf: str, reason: Motivazione) -> None:
        try:
            path = receipt_path(self.home, name, canale=ADMIN_CHANNEL)
            receipt = _common.poll(lambda: _common.read_receipt(path), timeout=self.timeout,
                                   interval=self.interval)
            if receipt is None:
                self._say("warn", _common.no_answer_message(name, self.timeout))
                return
            self.last_receipt = receipt
            self._show(receipt, cf, reason)
            self.select()  # the ledger already shows the outcome when the receipt appears
        finally:
            self.submit.disabled = False

    def _show(self, receipt: dict[str, Any], cf: str, reason: Motivazione) -> None:
        ids = receipt.get("id_operazione") or []
        if isinstance(ids, str):
            ids = [ids]
        if receipt.get("esito") == "OK":
            items = "".join(f"<li><code>{esc(i)}</code></li>" for i in ids)
            self._say("ok", "Annullamento eseguito.")
            self.result.value = (
                '<div class="certdesk-conferma" style="background:#e8f5e9;padding:6px 8px;'
                f'border-radius:4px">Annullamento eseguito per <code>{esc(cf)}</code>, '
                f"motivazione «{esc(reason.label)}». Certificati annullati ({len(ids)}):"
                f"<ul class=\"certdesk-annullati\">{items}</ul>"
                "Sono già nella lista di revoca (CRL). Si può richiedere un nuovo certificato "
                "in ogni momento.</div>"
            )
            self.motivazione.value = None
            self.nota.value = ""
        else:
            self._say("error", "Richiesta di annullamento rifiutata:")
            self.result.value = (
                f'<div class="certdesk-rifiuto">{errors_html(receipt)}</div>'
            )

    def _on_error(self, exc: BaseException) -> None:
        self._say("error", f"Errore inatteso: {esc(type(exc).__name__)}: {esc(exc)}")

    def _say(self, kind: str, message: str) -> None:
        colours = {"ok": "#1b5e20", "info": "#0d47a1", "warn": "#8a6d00", "error": "#8a1c1c"}
        self.status.value = (
            f'<div class="certdesk-msg certdesk-msg-{kind}" '
            f'style="color:{colours[kind]}">{message}</div>'
        )


def _admin_inbox_problem(exc: OSError) -> str:
    """Why nothing was filed: the administrators' inbox is the daemon's user's alone, and
    the daemon makes it when it starts."""
    return (f"Impossibile depositare la richiesta in <code>{_ADMIN_INBOX}</code>: "
            f"{esc(exc.strerror or exc)}. Il pannello deposita nel canale degli "
            "amministratori, che solo l'utente del daemon può scrivere e che il daemon "
            "crea all'avvio: apri il pannello con quell'utente, dopo aver avviato il daemon "
            "almeno una volta.")


def make_cancellation_panel(
    home: str | os.PathLike[str], *, timeout: float = 120.0, interval: float = 0.2
) -> CancellationPanel:
    """The "Annullamento certificato" panel for the certdesk home ``home``."""
    return CancellationPanel(Path(home), timeout=timeout, interval=interval)
