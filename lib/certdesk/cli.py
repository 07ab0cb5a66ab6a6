"""The ``certdesk`` command line. User mistakes get one line on stderr and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import __version__
from .cli_backup import add_backup_commands, cmd_backup, cmd_restore, report_witness
from .cli_cancel import add_cancel_command, cmd_cancel
from .cli_channels import add_channel_commands, cmd_canale
from .codes import refusal
from .daemon.options import add_watch_arguments
from .errors import CertdeskError
from .home import Home
from .outbox import Outbox
from .records import LEDGER_COLUMNS, RequestRecord
from .serving.options import add_listen_argument, add_serve_arguments
from .states import Stato

__all__ = ["main"]

ROME = ZoneInfo("Europe/Rome")


def _add_init_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``init`` (one command, or a step of the offline-root ceremony) and ``sign-issuing``."""
    init = commands.add_parser("init", help="create the root and issuing CA")
    init.add_argument(
        "--passphrase-file", type=Path, help="the CA passphrase (with pkcs11: the token's PIN)"
    )
    init.add_argument(
        "--keys", choices=("file", "pkcs11"),
        help="where the keys go; must be certdesk.toml's [keys] provider",
    )  # fmt: skip
    init.add_argument(
        "--use-existing-keys", action="store_true",
        help="adopt the token's keys with the configured labels instead of generating them",
    )  # fmt: skip
    part = init.add_mutually_exclusive_group()
    part.add_argument("--root-only", action="store_true", help="offline root: the root alone")
    part.add_argument(
        "--issuing-only", action="store_true",
        help="the issuing key and a CSR for the root (state/ca/issuing.csr.pem)",
    )  # fmt: skip
    part.add_argument(
        "--import-issuing", type=Path, metavar="FILE",
        help="install the certificates 'certdesk sign-issuing' made for this home",
    )  # fmt: skip
    sign = commands.add_parser(
        "sign-issuing", help="offline root: sign an issuing CA's CSR (in the root's home)"
    )
    sign.add_argument("csr", type=Path)
    sign.add_argument("--out", type=Path, required=True, help="issuing certificate + root, PEM")
    sign.add_argument("--passphrase-file", type=Path)


def _add_archivio(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    archivio = commands.add_parser(
        "archivio", help="write out an input's original, byte for byte, from the archive"
    )
    archivio.add_argument("id_operazione", nargs="?", metavar="IDOPERAZIONE")
    which = archivio.add_mutually_exclusive_group()
    which.add_argument("--claim", help="the input's claim (state/work/ folder name)")
    which.add_argument("--file", help="the input's name, as the receipt's \"file\" says")
    archivio.add_argument("--out", type=Path, help="write here (0600) instead of stdout")


def _add_rollover_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``rollover``: a new issuing CA, in one step or with the root offline."""
    rollover = commands.add_parser(
        "rollover", help="a new issuing CA under the same root (docs/operations.md)"
    )
    rollover.add_argument("--passphrase-file", type=Path)
    rollover.add_argument(
        "--from", dest="active_from", metavar="DATE",
        help="it signs new certificates from DATE (ISO 8601, UTC); default: at once",
    )  # fmt: skip
    step = rollover.add_mutually_exclusive_group()
    step.add_argument(
        "--request", action="store_true",
        help="offline root: the new key and its CSR (state/ca/genN/issuing.csr.pem)",
    )  # fmt: skip
    step.add_argument(
        "--import", dest="import_file", type=Path, metavar="FILE",
        help="offline root: install the certificates 'certdesk sign-issuing' made",
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certdesk", description="A small certificate authority with a drop-folder interface."
    )
    parser.add_argument("--version", action="version", version=f"certdesk {__version__}")
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("CERTDESK_HOME", ".")),
        help="folder holding inbox/, outbox/ and state/ (default: $CERTDESK_HOME or .)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_init_commands(commands)

    watch = commands.add_parser("watch", help="run the drop-folder daemon")
    add_watch_arguments(watch)

    serve = commands.add_parser(
        "serve", help="serve OCSP, the CRL and the CA certificates over HTTP (read-only)"
    )
    add_serve_arguments(serve)
    run = commands.add_parser(
        "run", help="the daemon and the publication service together (make run)"
    )
    add_watch_arguments(run)
    add_listen_argument(run)

    status = commands.add_parser("status", help="list certificates")
    status.add_argument("--codice-fiscale")
    status.add_argument("--stato", choices=[s.value for s in Stato])
    status.add_argument("--format", choices=("table", "csv", "json"), default="table")

    add_cancel_command(commands)

    _add_archivio(commands)
    _add_rollover_command(commands)

    verify = commands.add_parser(
        "verify-ledger", help="check the journal's hash chain and the ledger"
    )
    verify.add_argument(
        "--witness", type=Path, metavar="JOURNAL_CSV",
        help="also name the requests a surviving journal.csv shows and the store lost",
    )  # fmt: skip
    add_backup_commands(commands)
    add_channel_commands(commands)
    republish = commands.add_parser("republish", help="rebuild outbox/ from the state store")
    republish.add_argument("--passphrase-file", type=Path)
    commands.add_parser("admin", help="serve the admin notebooks with Voila (token required)")
    return parser


def _cmd_init(home: Home, args: argparse.Namespace) -> int:
    from . import ceremony
    from .runtime import init_home

    secret, keys, adopt = args.passphrase_file, args.keys, args.use_existing_keys
    if args.root_only:
        print(ceremony.init_root(home, secret, keys, adopt))
    elif args.issuing_only:
        print(ceremony.init_request(home, secret, keys, adopt))
    elif args.import_issuing is not None:
        if keys is not None or adopt:
            raise refusal("OPZIONE_NON_VALIDA", "insieme", opzioni="--import-issuing, --keys")
        print(ceremony.import_certificate(home, secret, args.import_issuing))
    else:
        message = init_home(home, secret, keys=keys, adopt=adopt)
        print(f"CA created in {home.ca_dir}; chain published to {Outbox.of(home).ca}")
        print(message)
    return 0


def _cmd_sign_issuing(home: Home, args: argparse.Namespace) -> int:
    from .ceremony import sign_request

    print(sign_request(home, args.passphrase_file, args.csr, args.out))
    return 0


def _cmd_rollover(home: Home, args: argparse.Namespace) -> int:
    from . import rollover

    if args.request:
        if args.active_from is not None:
            raise refusal("OPZIONE_NON_VALIDA", "insieme", opzioni="--request, --from")
        print(rollover.request(home, args.passphrase_file))
    elif args.import_file is not None:
        print(rollover.install(home, args.passphrase_file, args.import_file, args.active_from))
    else:
        print(rollover.roll(home, args.passphrase_file, args.active_from))
    return 0


def _cmd_watch(home: Home, args: argparse.Namespace) -> int:
    from .daemon.main import watch

    return watch(home, args)


def _cmd_serve(home: Home, args: argparse.Namespace) -> int:
    from .serving.main import serve

    return serve(home, args)


def _cmd_run(home: Home, args: argparse.Namespace) -> int:
    from .serving.together import run

    return run(home, args)


def _date_it(moment: datetime | None) -> str:
    return moment.astimezone(ROME).strftime("%d/%m/%Y") if moment else ""


def _cmd_status(home: Home, args: argparse.Namespace) -> int:
    from .identity import parse_codice_fiscale
    from .records import ledger_line
    from .runtime import open_store

    cf = parse_codice_fiscale(args.codice_fiscale).value if args.codice_fiscale else None
    store = open_store(home, read_only=True)  # a look: never made nor upgraded here
    try:
        records = store.find(codice_fiscale=cf, stato=Stato(args.stato) if args.stato else None)
    finally:
        store.close()
    if args.format == "csv":
        sys.stdout.write(",".join(LEDGER_COLUMNS) + "\n")
        sys.stdout.write("".join(ledger_line(r) for r in records))
    elif args.format == "json":
        json.dump([_as_json(r) for r in records], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _print_table(records)
    return 0


def _as_json(record: RequestRecord) -> dict[str, object]:
    from .clock import format_utc

    return {
        "id_operazione": record.id_operazione,
        "codice_fiscale": record.codice_fiscale,
        "profilo": record.profilo,
        "certificato": record.certificato or None,
        "stato": record.stato.value,
        "data_richiesta": format_utc(record.data_richiesta),
        "data_scadenza": format_utc(record.data_scadenza) if record.data_scadenza else None,
        "esito": record.esito,
        "seriale": record.seriale or None,
        "motivazione": record.motivazione or None,
        "data_annullamento": format_utc(record.data_annullamento)
        if record.data_annullamento
        else None,
    }


def _print_table(records: Sequence[RequestRecord]) -> None:
    header = ("IdOperazione", "Codice fiscale", "Stato", "Data richiesta", "Data scadenza", "Esito")
    rows = [
        (
            r.id_operazione,
            r.codice_fiscale,
            r.stato.value,
            _date_it(r.data_richiesta),
            _date_it(r.data_scadenza),
            r.esito,
        )
        for r in records
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(nessun certificato)")


def _cmd_archivio(home: Home, args: argparse.Namespace) -> int:
    from .archive_read import find_original, resolve_claim, write_original
    from .runtime import open_store

    if bool(args.id_operazione) == bool(args.claim or args.file):
        raise refusal("OPZIONE_NON_VALIDA", "archivio")
    store = open_store(home, read_only=True)
    try:
        claim, named = resolve_claim(
            store, id_operazione=args.id_operazione, claim=args.claim, file=args.file
        )
        original = find_original(home, store, claim)
    finally:
        store.close()
    written = write_original(original, args.out)
    if named > 1:
        print(f"certdesk: {named} inputs had this name: the latest (claim {claim}) written;"
              " --claim chooses another", file=sys.stderr)  # fmt: skip
    if args.out is not None:
        print(f"{args.out}: {written} bytes, the original of claim {claim}")
    return 0


def _cmd_verify(home: Home, args: argparse.Namespace) -> int:
    from .runtime import open_store
    from .verify import verify_channel_ledgers, verify_journal, verify_ledger

    store = open_store(home, read_only=True)  # a check: it never makes nor upgrades one
    try:
        outbox = Outbox.of(home)
        journal_rows = verify_journal(outbox.journal, store)
        ledger_rows = verify_ledger(outbox.ledger, store)
        verify_channel_ledgers(outbox.root, store)
    finally:
        store.close()
    print(f"intact: journal {journal_rows} rows chained, ledger {ledger_rows} rows match the store")
    if args.witness is not None:
        report_witness(home, args.witness)
    return 0


def _cmd_republish(home: Home, args: argparse.Namespace) -> int:
    from .daemon.lock import DaemonLock
    from .runtime import open_engine

    # outbox/ has one writer at a time: a running daemon's files are not rewritten under it
    lock = DaemonLock(home.lock_file)
    lock.acquire()
    try:
        engine = open_engine(home, passphrase_file=args.passphrase_file, workers=1)
        try:
            counts = engine.republish()
        finally:
            engine.close()
    finally:
        lock.release()
    print(
        f"republished {counts['certificates']} certificates, {counts['receipts']} receipts, "
        "ledger, journal, CA, CRL and OCSP"
    )
    return 0


def _cmd_admin(home: Home, args: argparse.Namespace) -> int:
    from .webapp import main as webapp_main

    return webapp_main(["--home", str(home.root)])


_COMMANDS = {
    "init": _cmd_init,
    "sign-issuing": _cmd_sign_issuing,
    "rollover": _cmd_rollover,
    "watch": _cmd_watch,
    "serve": _cmd_serve,
    "run": _cmd_run,
    "status": _cmd_status,
    "cancel": cmd_cancel,
    "archivio": _cmd_archivio,
    "verify-ledger": _cmd_verify,
    "republish": _cmd_republish,
    "admin": _cmd_admin,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "canale": cmd_canale,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    home = Home.at(args.home)
    try:
        return _COMMANDS[args.command](home, args)
    except CertdeskError as exc:
        print(f"certdesk: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"certdesk: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
