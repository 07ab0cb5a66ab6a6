"""Durable writes (``fsutil.py``): files written aside, synced (one barrier for a batch) and
renamed into place; an append cut short by a full disk is taken back."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from certdesk import fsutil
from certdesk.fsutil import append_durably


@pytest.mark.parametrize("mode", ["syncfs", "no-syncfs", "dirty"])
def test_write_aside_sync_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 mode: str) -> None:  # fmt: skip
    calls: list[int] = []
    real = fsutil._syncfs
    if mode == "no-syncfs" or real is None:
        monkeypatch.setattr(fsutil, "_syncfs", None)
    else:
        monkeypatch.setattr(fsutil, "_syncfs", lambda fd: calls.append(fd) or real(fd))
    if mode == "dirty":  # much else waiting to be written back: one fsync per file
        monkeypatch.setattr(fsutil, "_dirty_bytes", lambda: 2**40)
    elif mode == "syncfs":
        monkeypatch.setattr(fsutil, "_dirty_bytes", lambda: 0)
    targets = [tmp_path / f"f{i}.txt" for i in range(5)]
    (tmp_path / "f0.txt").write_bytes(b"old")
    pairs = [(fsutil.write_aside(t, f"new {i}".encode()), t) for i, t in enumerate(targets)]
    assert (tmp_path / "f0.txt").read_bytes() == b"old"  # nothing visible yet
    assert not any(t.exists() for t in targets[1:])
    fsutil.sync_data(a for a, _ in pairs)
    fsutil.rename_into_place(pairs)
    if real is not None:
        assert len(calls) == (1 if mode == "syncfs" else 0)
    assert [t.read_bytes() for t in targets] == [f"new {i}".encode() for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(t.name for t in targets)


def test_an_append_that_fails_half_way_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal or ledger append cut by a full disk is taken back: the file never ends
    in part of a row that the next append would extend."""
    path = tmp_path / "journal.csv"
    path.write_bytes(b"header\nrow 1\n")
    write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if len(data) > 4:
            return write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        append_durably(path, b"row 2 is long\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"header\nrow 1\n"
