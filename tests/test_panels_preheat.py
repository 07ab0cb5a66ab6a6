"""wait_for_viewer: at once outside Voila's pool; in it, a warm-up on data of its own
(nothing of the home read, nothing left behind) before it waits for its page."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from certdesk.panels import _preheat, wait_for_viewer


def test_outside_the_pool_it_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_preheat.PREHEAT_ENV, raising=False)
    monkeypatch.setattr(_preheat, "_warm_up", lambda: pytest.fail("warmed up outside a pool"))
    wait_for_viewer()


def test_in_the_pool_it_warms_up_then_waits(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    import voila.utils

    done: list[str] = []
    monkeypatch.setenv(_preheat.PREHEAT_ENV, "True")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real = _preheat._warm_up
    monkeypatch.setattr(_preheat, "_warm_up", lambda: (real(), done.append("warm")))
    monkeypatch.setattr(voila.utils, "wait_for_request", lambda: done.append("page"))
    wait_for_viewer()
    assert done == ["warm", "page"]
    assert list(tmp_path.iterdir()) == []  # its Parquet file is gone with its folder
