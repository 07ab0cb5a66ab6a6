"""The command line of integrator channels: ``certdesk canale add NAME [--group GROUP]``,
``canale list``, ``canale retire NAME`` (``cli`` registers them; ``channel_admin`` does
the work; docs/operations.md, "Channels", tells the Unix set-up)."""

from __future__ import annotations

import argparse

from .home import Home
from .store_channels import ChannelEntry

__all__ = ["add_channel_commands", "cmd_canale"]


def add_channel_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    canale = commands.add_parser("canale", help="integrator channels: add, list, retire")
    actions = canale.add_subparsers(dest="azione", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a channel: inbox/NAME/ and outbox/NAME/")
    add.add_argument("nome", metavar="NAME")
    add.add_argument(
        "--group", default="", metavar="GROUP",
        help="the Unix group whose members write inbox/NAME/ and read outbox/NAME/",
    )  # fmt: skip
    actions.add_parser("list", help="the channels, with their group and state")
    retire = actions.add_parser("retire", help="stop a channel taking inputs")
    retire.add_argument("nome", metavar="NAME")


def cmd_canale(home: Home, args: argparse.Namespace) -> int:
    from .channel_admin import add_channel, retire_channel
    from .runtime import open_store

    if args.azione == "list":  # a look: the store is neither made nor upgraded
        store = open_store(home, read_only=True)
    else:
        home.ensure()
        store = open_store(home)
    try:
        if args.azione == "add":
            made = add_channel(home, store, args.nome, args.group)
            owner = f"group {made.gruppo}" if made.gruppo else "the daemon's own group"
            print(f"channel {args.nome}: drop into {made.inbox}, read {made.outbox} ({owner})")
        elif args.azione == "retire":
            entry = retire_channel(home, store, args.nome)
            print(f"channel {entry.nome} retired on {entry.ritirato}: it takes no new input")
        else:
            _print_list(store.channels())
    finally:
        store.close()
    return 0


def _print_list(channels: list[ChannelEntry]) -> None:
    if not channels:
        print("no channels: every input comes through inbox/")
        return
    print(f"{'canale':<32} {'gruppo':<16} {'creato':<21} ritirato")
    for c in channels:
        print(f"{c.nome:<32} {c.gruppo or '-':<16} {c.creato:<21} {c.ritirato or '-'}")
