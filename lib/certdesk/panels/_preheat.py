"""A notebook's pause between warming up and showing a panel (the web app's kernel pool).

``certdesk admin`` runs Voila with pre-heated kernels: for each notebook one kernel is
started ahead of any page and runs the notebook until :func:`wait_for_viewer`, so the
interpreter, the imports (pandas, pyarrow, DuckDB, ipywidgets: most of a page's first
seconds) are done before a person asks. When a page comes, Voila hands it
that kernel, the call returns, and the rest of the notebook builds the panel from the
home as it is *now*, never from data read while the kernel waited.

Anywhere else (Jupyter, nbclient in the tests, a kernel Voila started for a page because
the pool was empty) the call returns at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["PREHEAT_ENV", "wait_for_viewer"]

#: Set (to ``"True"``) by Voila in the environment of the kernels it starts for its pool.
PREHEAT_ENV = "VOILA_PREHEAT"


def wait_for_viewer() -> None:
    """Block until Voila hands this pre-heated kernel to a page; at once when not one."""
    if os.environ.get(PREHEAT_ENV, "False") != "True":
        return
    from voila.utils import wait_for_request  # type: ignore[import-untyped]

    _warm_up()
    wait_for_request()


def _warm_up() -> None:
    """What a process pays at its first query (DuckDB's Parquet reader and writer, a
    result made a pandas frame), paid here on data of its own, so that the page's first
    panel does not. Nothing of the home is read: nothing of it can be stale when the
    page comes."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="certdesk-warm-") as folder:
        path = Path(folder) / "warm.parquet"
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT 1 AS n, 'x' AS s) TO '{path}' (FORMAT parquet)")
            con.execute(f"SELECT count(*), max(s) FROM read_parquet('{path}')").fetchall()
            con.sql(f"SELECT * FROM read_parquet('{path}')").to_arrow_table().to_pandas()
