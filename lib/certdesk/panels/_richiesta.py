"""Richiedi certificato: upload a PKCS#10 request, file it into the inbox of the channel
chosen (``inbox/``, or a channel's ``inbox/<canale>/``), show the outcome from that
channel's receipts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..client import drop_file, receipt_path, unique_name
from ..codes import message
from ..frame import format_date, load_ledger
from ..outbox import Outbox
from . import _channels, _common
from ._common import Waiter, daemon_health, data_link, errors_html, esc, health_banner

__all__ = ["MAX_CSR_BYTES", "RequestPanel", "make_request_panel"]

#: A CSR with a 4096-bit RSA key is under 2 KiB in PEM; anything this big is not a CSR.
MAX_CSR_BYTES = 64 * 1024

#: The fields the portal shows for a request, in its order.
FIELDS = ("IdOperazione", "Certificato", "Stato", "Data Richiesta", "Data Scadenza", "Esito")


class RequestPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """The "Richiedi certificato" panel; build it with :func:`make_request_panel`."""

    def __init__(self, home: Path, *, timeout: float = 120.0, interval: float = 0.2) -> None:
        self.home = home
        self.timeout = timeout
        self.interval = interval
        self.waiter = Waiter("certdesk-richiesta")
        self.last_receipt: dict[str, Any] | None = None
        self.last_input: Path | None = None
        self._last_tick = -1

        self.daemon = widgets.HTML()
        self.canale = widgets.Dropdown(
            description="Canale", options=_channels.request_options([]), value="",
            tooltip="La cartella in cui depositare la richiesta: la sua ricevuta arriva nel "
                    "canale stesso", style={"description_width": "initial"},
        )
        self.canale.add_class("certdesk-canale")
        self.upload = widgets.FileUpload(
            accept=".csr,.pem,.der,.req,.p10",
            multiple=False,
            description="Sfoglia…",
            tooltip="Il file della richiesta, formato standard PKCS#10 (PEM o DER)",
        )
        self.upload.add_class("certdesk-upload")
        self.chosen = widgets.HTML(value="<i>Nessun file selezionato</i>")
        self.chosen.add_class("certdesk-chosen")
        self.submit = widgets.Button(
            description="Richiedi certificato", button_style="primary", icon="certificate",
            layout=widgets.Layout(width="auto"),
        )
        self.submit.add_class("certdesk-submit")
        self.status = widgets.HTML()
        self.status.add_class("certdesk-status")
        self.result = widgets.HTML()
        self.result.add_class("certdesk-result")

        self.upload.observe(self._on_upload, names="value")
        self.submit.on_click(self._on_submit)
        super().__init__(
            children=[
                self.daemon,
                widgets.HBox([self.canale]),
                widgets.HBox([self.upload, self.chosen]),
                widgets.HBox([self.submit]),
                self.status,
                self.result,
            ]
        )
        self.add_class("certdesk-request")
        self.refresh_daemon()
        self.refresh_channels()

    # -- what the person does -------------------------------------------------------------

    def refresh_daemon(self) -> None:
        self.daemon.value = health_banner(daemon_health(self.home))

    def refresh_channels(self) -> None:
        """The channels a request may be filed into: the default one, then each that takes
        inputs (``_channels``); the one chosen stays chosen while it is offered."""
        options = tuple(_channels.request_options(_channels.recorded_channels(self.home)))
        if options != tuple(self.canale.options):
            chosen = self.canale.value
            self.canale.options = options
            self.canale.value = chosen if chosen in dict(options).values() else ""

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if files:
            item = files[0]
            self.chosen.value = f"File: <b>{esc(item['name'])}</b> ({int(item['size'])} byte)"
        else:
            self.chosen.value = "<i>Nessun file selezionato</i>"

    def _on_submit(self, _button: Any = None) -> None:
        self.refresh_daemon()
        if self.waiter.busy:
            self._say("warn", "Una richiesta è già in elaborazione: attendi il suo esito.")
            return
        files = self.upload.value
        if not files:
            self._say("error", "Seleziona prima il file della richiesta "
                               "(PKCS#10, <code>.csr</code>).")
            return
        item = files[0]
        content = bytes(item["content"])
        # Refused here as the daemon would, in the registry's words (certdesk.codes).
        if not content:
            self._say("error", f"<code>FILE_VUOTO</code>: {esc(message('FILE_VUOTO'))}")
            return
        if len(content) > MAX_CSR_BYTES:
            too_big = message(
                "FILE_TROPPO_GRANDE", "dimensione", byte=len(content),
                limite_kib=MAX_CSR_BYTES // 1024,
            )  # fmt: skip
            self._say("error", f"<code>FILE_TROPPO_GRANDE</code>: {esc(too_big)}")
            return
        # the inbox takes *.csr (PEM or DER): whatever the upload was called, file it so
        name = unique_name("richiesta", ".csr")
        canale = str(self.canale.value or "")
        inbox = f"inbox/{canale}/" if canale else "inbox/"
        try:
            self.last_input = drop_file(self.home, name, content, canale=canale)
        except OSError as exc:  # a channel's inbox gone, or not this user's to write
            self._say("error", f"Impossibile depositare la richiesta in <code>{esc(inbox)}"
                               f"</code>: {esc(exc.strerror or exc)}.")
            return
        self.last_receipt = None
        self.upload.value = ()
        self.result.value = ""
        self.submit.disabled = True
        self._say(
            "info",
            f"Richiesta <code>{esc(name)}</code> depositata in <code>{esc(inbox)}</code>: "
            "in attesa dell'elaborazione…",
        )
        self.waiter.start(lambda: self._wait(name, canale), self._on_error)

    # -- the background job ---------------------------------------------------------------

    def _wait(self, name: str, canale: str) -> None:
        try:
            path = receipt_path(self.home, name, canale=canale)
            receipt = _common.poll(
                lambda: _common.read_receipt(path),
                timeout=self.timeout,
                interval=self.interval,
                tick=lambda elapsed: self._tick(name, elapsed),
            )
            if receipt is None:
                self._say("warn", _common.no_answer_message(name, self.timeout))
                return
            self.last_receipt = receipt
            if receipt.get("esito") == "OK" and receipt.get("stato") == "IN_GENERAZIONE":
                receipt = self._wait_issued(receipt)
            self._show(receipt)
        finally:
            self.submit.disabled = False
            self.refresh_daemon()
            self.refresh_channels()

    def _tick(self, name: str, elapsed: float) -> None:
        # a word every 5 s, so a person sees it is still waiting
        second = int(elapsed)
        if second >= 5 and second % 5 == 0 and second != self._last_tick:
            self._last_tick = second
            self._say(
                "info",
                f"Richiesta <code>{esc(name)}</code> in attesa dell'elaborazione… "
                f"({int(elapsed)} s)",
            )
            self.refresh_daemon()

    def _wait_issued(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """An accepted request still being issued: follow the ledger until it is done."""
        id_op = str(receipt.get("id_operazione") or "")
        self._say("info", f"Richiesta accettata (IdOperazione <code>{esc(id_op)}</code>): "
                          "certificato in generazione…")

        def issued() -> dict[str, Any] | None:
            ledger = load_ledger(self.home)
            rows = ledger[ledger["IdOperazione"] == id_op]
            if rows.empty or rows.iloc[0]["Stato"] == "IN_GENERAZIONE":
                return None
            row = rows.iloc[0]
            return {
                **receipt,
                "stato": str(row["Stato"]),
                "certificato": None if _missing(row["Certificato"]) else str(row["Certificato"]),
                "data_richiesta": row["DataRichiesta"],
                "data_scadenza": row["DataScadenza"],
            }

        done = _common.poll(issued, timeout=self.timeout, interval=max(self.interval, 0.5))
        return done if done is not None else receipt

    def _show(self, receipt: dict[str, Any]) -> None:
        ok = receipt.get("esito") == "OK"
        certificato = receipt.get("certificato")
        esito = esc(receipt.get("esito"))
        if ok and certificato:
            pem = Outbox.of(self.home).certificate_named(str(certificato))
            try:
                link = data_link(
                    pem.read_bytes(), filename=pem.name, mime="application/x-pem-file",
                    text=f"Scarica {pem.name}", css_class="certdesk-download",
                )
                esito = f"{esito} — {link}"
            except FileNotFoundError:
                esito = f"{esito} (il file {esc(pem.name)} non è ancora in outbox/certs)"
        values = (
            receipt.get("id_operazione"),
            certificato,
            receipt.get("stato"),
            format_date(receipt.get("data_richiesta")),
            format_date(receipt.get("data_scadenza")),
        )
        rows = "".join(
            f'<tr><th style="text-align:left;padding:2px 12px 2px 0">{label}</th>'
            f'<td class="certdesk-field-{label.replace(" ", "")}">{esc(value)}</td></tr>'
            for label, value in zip(FIELDS[:-1], values, strict=True)
        )
        rows += (
            '<tr><th style="text-align:left;padding:2px 12px 2px 0">Esito</th>'
            f'<td class="certdesk-field-Esito">{esito}</td></tr>'
        )
        body = f'<table class="certdesk-outcome">{rows}</table>'
        if ok:
            self._say("ok", "Richiesta elaborata.")
        else:
            self._say("error", "Richiesta rifiutata:")
            body += errors_html(receipt)
        self.result.value = body

    def _on_error(self, exc: BaseException) -> None:
        self._say("error", f"Errore inatteso: {esc(type(exc).__name__)}: {esc(exc)}")

    def _say(self, kind: str, message: str) -> None:
        colours = {"ok": "#1b5e20", "info": "#0d47a1", "warn": "#8a6d00", "error": "#8a1c1c"}
        self.status.value = (
            f'<div class="certdesk-msg certdesk-msg-{kind}" '
            f'style="color:{colours[kind]}">{message}</div>'
        )


def _missing(value: object) -> bool:
    return value is None or str(value) in ("", "<NA>", "nan", "NaT")


def make_request_panel(
    home: str | os.PathLike[str], *, timeout: float = 120.0, interval: float = 0.2
) -> RequestPanel:
    """The "Richiedi certificato" panel for the certdesk home ``home``.

    ``timeout``: how long to wait for the daemon's receipt before telling the person that
    the request stays queued.
    """
    return RequestPanel(Path(home), timeout=timeout, interval=interval)
