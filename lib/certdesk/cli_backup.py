"""The command line of backup and restore: ``backup``, ``backup --verify``, ``restore``,
and ``verify-ledger --witness`` (``cli`` registers them; docs/operations.md tells when to
use each)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .codes import refusal
from .home import Home

__all__ = ["add_backup_commands", "cmd_backup", "cmd_restore", "report_witness"]


def add_backup_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup", help="a consistent backup of the home into DEST (the daemon may run)"
    )
    backup.add_argument("dest", type=Path, metavar="DEST")
    backup.add_argument(
        "--verify", action="store_true", help="check the backup DEST instead of taking one"
    )
    backup.add_argument(
        "--include-passphrase", action="store_true",
        help="also copy state/passphrase (the backup then opens the CA's keys by itself)",
    )  # fmt: skip
    restore = commands.add_parser(
        "restore", help="restore the backup SRC into the new, empty home given by --home"
    )
    restore.add_argument("source", type=Path, metavar="SRC")
    restore.add_argument("--passphrase-file", type=Path)
    restore.add_argument(
        "--witness", type=Path, metavar="JOURNAL_CSV",
        help="a surviving outbox/journal.csv: no IdOperazione it names is handed out again",
    )  # fmt: skip


def cmd_backup(home: Home, args: argparse.Namespace) -> int:
    if args.verify:
        from .backup_check import verify_backup

        manifest = verify_backup(args.dest)
        print(
            f"intact: {args.dest}, taken {manifest.created} from {manifest.home}; "
            f"{len(manifest.files)} files, journal head {manifest.head_seq}"
        )
        return 0
    from .backup import take_backup

    result = take_backup(home, args.dest, include_passphrase=args.include_passphrase)
    manifest = result.manifest
    passphrase = (
        "the passphrase included (keep this backup as safe as the key itself)"
        if manifest.passphrase_included
        else "no passphrase (keep it apart: a restore needs it)"
        if manifest.keys["provider"] == "file"
        else f"keys in the token {manifest.keys['token_label']!r}: only their labels"
    )
    print(
        f"backup written to {args.dest.absolute()}: {len(manifest.files)} files, "
        f"{result.total_bytes / 1e6:.1f} MB, journal head {manifest.head_seq}; {passphrase}"
    )
    return 0


def cmd_restore(home: Home, args: argparse.Namespace) -> int:
    from .restore import restore_backup

    result = restore_backup(
        args.source, home, passphrase_file=args.passphrase_file, witness=args.witness
    )
    print(
        f"restored {args.source} into {home.root}: journal head {result.manifest.head_seq}, "
        f"next IdOperazione number {result.next_id}, "
        f"{result.republished.get('certificates', 0)} certificates republished"
    )
    return 0


def report_witness(home: Home, witness: Path) -> None:
    """``verify-ledger --witness``: RICHIESTE_PERSE naming what the store lost."""
    from .runtime import open_store
    from .witness import lost_requests

    store = open_store(home, read_only=True)
    try:
        lost = lost_requests(store, witness)
    finally:
        store.close()
    if not lost:
        print(f"witness {witness}: every change it shows is in the store")
        return
    elenco = "; ".join(
        f"{item.id_operazione} {item.stato} del {item.data}"
        + (f" (l'archivio dice {item.in_store})" if item.in_store else "")
        for item in lost
    )
    raise refusal("RICHIESTE_PERSE", file=witness, numero=len(lost), elenco=elenco)
