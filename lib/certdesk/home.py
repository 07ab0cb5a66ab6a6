"""The folders of a certdesk home: ``inbox/``, ``outbox/`` and the private ``state/``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .channels import ADMIN_CHANNEL, DEFAULT_CHANNEL

__all__ = ["Home"]

PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class Home:
    """The folders of one home. Each path is built once (cached): they are asked for per
    input file, thousands of times a second under load."""

    root: Path

    @classmethod
    def at(cls, root: Path | str) -> Home:
        return cls(Path(root).absolute())

    @cached_property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @cached_property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @cached_property
    def state(self) -> Path:
        return self.root / "state"

    @cached_property
    def ca_dir(self) -> Path:
        return self.state / "ca"

    @cached_property
    def database(self) -> Path:
        return self.state / "certdesk.sqlite3"

    @cached_property
    def work(self) -> Path:
        """Claimed inputs being processed (one sub-folder per claim)."""
        return self.state / "work"

    @cached_property
    def archive(self) -> Path:
        return self.state / "archive"

    @cached_property
    def quarantine(self) -> Path:
        return self.state / "quarantine"

    @cached_property
    def admin(self) -> Path:
        """The administrators' channel (``channels.ADMIN_CHANNEL``): ``inbox/`` where the
        Annullamento panel files, ``receipts/`` its answers. In ``state/``, so only the
        daemon's own user can write there."""
        return self.state / "admin"

    @cached_property
    def admin_inbox(self) -> Path:
        return self.admin / "inbox"

    def channel_inbox(self, canale: str) -> Path:
        """The folder inputs of ``canale`` are dropped into (``channels``)."""
        if canale == DEFAULT_CHANNEL:
            return self.inbox
        if canale == ADMIN_CHANNEL:
            return self.admin_inbox
        return self.inbox / canale

    def channel_outbox(self, canale: str) -> Path:
        """The folder the receipts of ``canale`` go to (in ``receipts/``), with a named
        channel's certificates and ledger."""
        if canale == DEFAULT_CHANNEL:
            return self.outbox
        if canale == ADMIN_CHANNEL:
            return self.admin
        return self.outbox / canale

    @cached_property
    def passphrase_file(self) -> Path:
        return self.state / "passphrase"

    @cached_property
    def lock_file(self) -> Path:
        return self.state / "daemon.lock"

    def ensure(self) -> None:
        """Create the folders; ``state/`` and its children are private (0700)."""
        for public in (self.inbox, self.outbox):
            public.mkdir(parents=True, exist_ok=True)
        for private in (
            self.state, self.ca_dir, self.work, self.archive, self.quarantine, self.admin,
            self.admin_inbox,
        ):  # fmt: skip
            private.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask, and an existing folder keeps its mode.
            os.chmod(private, PRIVATE_DIR_MODE)
