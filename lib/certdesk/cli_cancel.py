"""The command line's ``certdesk cancel``: an annullamento filed into an inbox, as an
integrator would (``cli`` registers it)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .client import file_cancellation, wait_for_receipt
from .codes import refusal
from .home import Home
from .reasons import Motivazione

__all__ = ["add_cancel_command", "cmd_cancel"]


def add_cancel_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cancel = commands.add_parser("cancel", help="file an annullamento request into inbox/")
    cancel.add_argument("--canale", default="", help="a channel's inbox instead (@admin: any)")
    cancel.add_argument("--codice-fiscale", required=True)
    cancel.add_argument("--id-operazione", action="append", default=[])
    cancel.add_argument("--motivazione", required=True, choices=[m.value for m in Motivazione])
    cancel.add_argument("--nota", default="")
    cancel.add_argument("--operatore", default=os.environ.get("USER", ""))
    cancel.add_argument("--wait", action="store_true", help="wait for the receipt")
    cancel.add_argument("--timeout", type=float, default=60.0)


def cmd_cancel(home: Home, args: argparse.Namespace) -> int:
    path = file_cancellation(
        home.root,
        codice_fiscale=args.codice_fiscale,
        id_operazione=args.id_operazione,
        motivazione=args.motivazione,
        nota=args.nota,
        operatore=args.operatore,
        canale=args.canale,
    )
    print(path.name)
    if not args.wait:
        return 0
    receipt = wait_for_receipt(home.root, path.name, timeout=args.timeout, canale=args.canale)
    if receipt is None:
        raise refusal("RICEVUTA_NON_ARRIVATA", file=path.name, secondi=args.timeout)
    json.dump(receipt, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0 if receipt.get("esito") == "OK" else 1
