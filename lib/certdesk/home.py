"""The folders of a certdesk home: ``inbox/``, ``outbox/`` and the private ``state/``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Home"]

PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def at(cls, root: Path | str) -> Home:
        return cls(Path(root).absolute())

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def ca_dir(self) -> Path:
        return self.state / "ca"

    @property
    def database(self) -> Path:
        return self.state / "certdesk.sqlite3"

    @property
    def work(self) -> Path:
        """Claimed inputs being processed (one sub-folder per claim)."""
        return self.state / "work"

    @property
    def archive(self) -> Path:
        return self.state / "archive"

    @property
    def quarantine(self) -> Path:
        return self.state / "quarantine"

    @property
    def passphrase_file(self) -> Path:
        return self.state / "passphrase"

    @property
    def lock_file(self) -> Path:
        return self.state / "daemon.lock"

    def ensure(self) -> None:
        """Create the folders; ``state/`` and its children are private (0700)."""
        for public in (self.inbox, self.outbox):
            public.mkdir(parents=True, exist_ok=True)
        for private in (self.state, self.ca_dir, self.work, self.archive, self.quarantine):
            private.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask, and an existing folder keeps its mode.
            os.chmod(private, PRIVATE_DIR_MODE)
