"""The state store's lookups stay on their indexes, so their cost does not grow with the
store. Without statistics (certdesk never runs ANALYZE) SQLite's plans depend on the
schema and the SQL only, so an empty store shows the plan a million rows would get."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certdesk.states import Stato
from certdesk.store import Store

CF = "RSSMRA80A01H501U"
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def _plans(store: Store, call: Callable[[Store], Any]) -> list[tuple[str, str]]:
    """(statement, its query plan) for every statement ``call`` runs on ``store``."""
    statements: list[str] = []
    connection = store._conn
    connection.set_trace_callback(statements.append)
    try:
        result = call(store)
        if hasattr(result, "__next__"):
            list(result)  # generators run their query when read
    finally:
        connection.set_trace_callback(None)
    plans = []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            continue
        rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        plans.append((sql, " | ".join(str(r[-1]) for r in rows)))
    return plans


# (what, the call, the index its plan must use)
HOT_LOOKUPS = [
    ("a person's active certificates (annullamento)",
     lambda s: s.find(codice_fiscale=CF, stato=Stato.ATTIVATO), "requests_codice_fiscale"),
    ("a person's requests (status lookup; an annullamento's facts)",
     lambda s: s.find(codice_fiscale=CF), "requests_codice_fiscale"),
    ("the CRL's entries", lambda s: s.revoked_entries(valid_at=NOW),
     "COVERING INDEX requests_revoked"),
    ("a request by IdOperazione", lambda s: s.get("20261128-000000001"), "(id_operazione=?)"),
    ("the uses of a public key", lambda s: s.key_uses("ab" * 32), "requests_spki_prefix"),
    ("a repeated input", lambda s: s.live_request_with_input("cd" * 32, "ab" * 32),
     "requests_spki_prefix"),
    ("OCSP responses due", lambda s: s.ocsp_due(NOW, 64), "requests_ocsp"),
    ("certificates past their expiry", lambda s: s.expired_active(NOW),
     "requests_stato_scadenza"),
    ("the request of a claim", lambda s: s.request_for_claim("x"), "requests_claim"),
    ("requests left being issued (start-up)", lambda s: s.pending_generation(),
     "requests_stato_scadenza"),
    ("inputs left unfinished (start-up)", lambda s: s.pending_inputs(), "inputs_pending"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "index"), [(c, i) for _, c, i in HOT_LOOKUPS], ids=[w for w, _, _ in HOT_LOOKUPS]
)
def test_hot_lookups_use_their_index(
    tmp_path: Path, call: Callable[[Store], Any], index: str
) -> None:
    store = Store(tmp_path / "certdesk.sqlite3")
    try:
        plans = _plans(store, call)
    finally:
        store.close()
    assert plans
    for sql, plan in plans:
        # Never a full scan; reading a small covering index whole is fine.
        assert "SCAN" not in plan or "COVERING INDEX" in plan, (sql, plan)
        assert index in plan, (sql, plan)
        if "requests_revoked" in index:  # the CRL's order is the index's: nothing sorted
            assert "TEMP B-TREE" not in plan, (sql, plan)
